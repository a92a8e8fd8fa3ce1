import PortunusConfig
import Testing
@testable import PortunusEngine

/// The connection's transition table, row by row, without a kernel.
@Suite struct ConnectionMachineTests {
    /// One listener with three targets in dialling order; the second takes a PROXY v2 header.
    static func plan() throws -> ForwardingPlan {
        try ForwardingPlan.compile(try ConfigLoader.parse("""
            [[rule]]
            name = "r"
            protocol = "tcp"
            listen_port = 10000
            targets = [ { host = "127.0.0.1", port = 20000 },
                        { host = "127.0.0.1", port = 20001, proxy_protocol = "v2" },
                        { host = "127.0.0.1", port = 20002 } ]
            """))
    }

    static func accepted() -> Connection {
        var connection = Connection()
        connection.state = .accepted
        return connection
    }

    @Test func dialsEachTargetOnceInOrderThenGivesUp() throws {
        let plan = try Self.plan()
        var c = Self.accepted()
        #expect(c.handle(.start, plan) == .dial(endpoint: 0))
        #expect(c.handle(.attemptFailed, plan) == .dial(endpoint: 1))
        #expect(c.state == .dialling(endpoint: 1))
        // The second target takes a PROXY header: a failed header is a failed attempt.
        #expect(c.handle(.connected, plan) == .sendPrelude(endpoint: 1))
        #expect(c.handle(.attemptFailed, plan) == .dial(endpoint: 2))
        #expect(c.handle(.attemptFailed, plan) == .giveUp)
        #expect(c.state == .closing(reset: false))
    }

    @Test func connectsWithAndWithoutAHeader() throws {
        let plan = try Self.plan()
        var direct = Self.accepted()
        _ = direct.handle(.start, plan)
        #expect(direct.handle(.connected, plan) == .startRelay)
        #expect(direct.state == .relaying)

        var proxied = Self.accepted()
        _ = proxied.handle(.start, plan)
        _ = proxied.handle(.attemptFailed, plan)
        _ = proxied.handle(.connected, plan)
        #expect(proxied.state == .sendingPrelude(endpoint: 1))
        #expect(proxied.handle(.preludeSent, plan) == .startRelay)
    }

    @Test func bothHalvesEndingClosesWithAFin() throws {
        let plan = try Self.plan()
        var c = Self.accepted()
        _ = c.handle(.start, plan)
        _ = c.handle(.connected, plan)
        #expect(c.handle(.halfEnded(.up, otherEnded: false), plan) == .shutdownWrite(.up))
        #expect(c.state == .relaying)
        #expect(c.handle(.halfEnded(.down, otherEnded: true), plan) == .beginClose)
        #expect(c.state == .closing(reset: false))
        #expect(c.handle(.settled, plan) == .release(reset: false))
    }

    @Test func aResetDuringTheCloseIsKept() throws {
        let plan = try Self.plan()
        var c = Self.accepted()
        _ = c.handle(.start, plan)
        #expect(c.handle(.close(reset: false), plan) == .beginClose)
        #expect(c.handle(.close(reset: true), plan) == Connection.Operation.none)
        #expect(c.handle(.close(reset: false), plan) == Connection.Operation.none)
        #expect(c.state == .closing(reset: true))
        // The dial's own completions arriving after the close began change nothing.
        #expect(c.handle(.attemptFailed, plan) == Connection.Operation.none)
        #expect(c.handle(.connected, plan) == Connection.Operation.none)
        #expect(c.handle(.settled, plan) == .release(reset: true))
    }

    @Test func anEventOutsideTheTableTraps() async {
        await #expect(processExitsWith: .failure) {
            var c = ConnectionMachineTests.accepted()
            _ = c.handle(.preludeSent, try ConnectionMachineTests.plan())
        }
        // A slot is never closed before its first dial: that row does not exist.
        await #expect(processExitsWith: .failure) {
            var c = ConnectionMachineTests.accepted()
            _ = c.handle(.close(reset: true), try ConnectionMachineTests.plan())
        }
        // Settling with an operation still in flight would free a slot the kernel uses.
        await #expect(processExitsWith: .failure) {
            var c = ConnectionMachineTests.accepted()
            let plan = try ConnectionMachineTests.plan()
            _ = c.handle(.start, plan)
            _ = c.handle(.close(reset: true), plan)
            c.inFlight = 1
            _ = c.handle(.settled, plan)
        }
    }
}
