import PortunusConfig
import Testing
@testable import PortunusEngine

/// The connection's transition table, row by row, without a kernel.
@Suite struct ConnectionMachineTests {
    /// One listener with three targets in dialling order; the second takes a PROXY v2 header.
    static func plan() throws -> ForwardingPlan {
        ForwardingPlan.compile(try ConfigLoader.parse("""
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
        #expect(c.handle(.start(failedTargets: 0), plan) == .dial(endpoint: 0, address: 0))
        #expect(c.handle(.attemptFailed(nextAddress: false), plan) == .dial(endpoint: 1, address: 0))
        #expect(c.state == .dialling(endpoint: 1, address: 0))
        // The second target takes a PROXY header: a failed header is a failed attempt.
        #expect(c.handle(.connected, plan) == .sendPrelude(endpoint: 1))
        #expect(c.handle(.attemptFailed(nextAddress: false), plan) == .dial(endpoint: 2, address: 0))
        #expect(c.handle(.attemptFailed(nextAddress: false), plan) == .giveUp)
        #expect(c.state == .closing(reset: false))
    }

    /// A named target first (two of its addresses tried), then an IP target.
    static func namedPlan() throws -> ForwardingPlan {
        ForwardingPlan.compile(try ConfigLoader.parse("""
            [[rule]]
            name = "r"
            listen_port = 10000
            targets = [ { host = "a.example", port = 20000 },
                        { host = "127.0.0.1", port = 20001 },
                        { host = "b.example", port = 20002, proxy_protocol = "v1" } ]
            """))
    }

    @Test func aNamedTargetIsResolvedThenEachAddressDialledBeforeTheNextTarget() throws {
        let plan = try Self.namedPlan()
        var c = Self.accepted()
        #expect(c.handle(.start(failedTargets: 0), plan) == .resolve(endpoint: 0))
        #expect(c.state == .resolving(endpoint: 0))
        #expect(c.handle(.resolved, plan) == .dial(endpoint: 0, address: 0))
        #expect(c.handle(.attemptFailed(nextAddress: true), plan) == .dial(endpoint: 0, address: 1))
        #expect(c.state == .dialling(endpoint: 0, address: 1))
        #expect(c.handle(.attemptFailed(nextAddress: false), plan) == .dial(endpoint: 1, address: 0))
        #expect(c.handle(.attemptFailed(nextAddress: false), plan) == .resolve(endpoint: 2))
        // A name that does not resolve is a failed target.
        #expect(c.handle(.attemptFailed(nextAddress: false), plan) == .giveUp)
        #expect(c.state == .closing(reset: false))
    }

    @Test func theSecondAddressCarriesTheHeaderWhenTheFirstRefuses() throws {
        let plan = try Self.namedPlan()
        var c = Self.accepted()
        _ = c.handle(.start(failedTargets: 0b011), plan)   // only b.example is Healthy
        #expect(c.state == .resolving(endpoint: 2))
        _ = c.handle(.resolved, plan)
        _ = c.handle(.attemptFailed(nextAddress: true), plan)
        #expect(c.handle(.connected, plan) == .sendPrelude(endpoint: 2))
        #expect(c.state == .sendingPrelude(endpoint: 2, address: 1))
        #expect(c.handle(.preludeSent, plan) == .startRelay)
    }

    @Test func healthyTargetsGoFirstThenTheFailedOnesInPriorityOrder() throws {
        let plan = try Self.plan()
        var c = Self.accepted()
        // Targets 0 and 2 were Failed when the connection arrived: 1, then 0, then 2.
        #expect(c.handle(.start(failedTargets: 0b101), plan) == .dial(endpoint: 1, address: 0))
        #expect(c.handle(.attemptFailed(nextAddress: false), plan) == .dial(endpoint: 0, address: 0))
        #expect(c.handle(.attemptFailed(nextAddress: false), plan) == .dial(endpoint: 2, address: 0))
        #expect(c.handle(.attemptFailed(nextAddress: false), plan) == .giveUp)
        // All Failed: priority order, each once.
        var all = Self.accepted()
        #expect(all.handle(.start(failedTargets: 0b111), plan) == .dial(endpoint: 0, address: 0))
        #expect(all.handle(.attemptFailed(nextAddress: false), plan) == .dial(endpoint: 1, address: 0))
        #expect(all.handle(.attemptFailed(nextAddress: false), plan) == .dial(endpoint: 2, address: 0))
        #expect(all.handle(.attemptFailed(nextAddress: false), plan) == .giveUp)
    }

    @Test func aConnectionWaitingForANameCanBeClosed() throws {
        let plan = try Self.namedPlan()
        var c = Self.accepted()
        _ = c.handle(.start(failedTargets: 0), plan)
        #expect(c.handle(.close(reset: true), plan) == .beginClose)
        #expect(c.state == .closing(reset: true))
        #expect(c.handle(.settled, plan) == .release(reset: true))
    }

    @Test func connectsWithAndWithoutAHeader() throws {
        let plan = try Self.plan()
        var direct = Self.accepted()
        _ = direct.handle(.start(failedTargets: 0), plan)
        #expect(direct.handle(.connected, plan) == .startRelay)
        #expect(direct.state == .relaying)

        var proxied = Self.accepted()
        _ = proxied.handle(.start(failedTargets: 0), plan)
        _ = proxied.handle(.attemptFailed(nextAddress: false), plan)
        _ = proxied.handle(.connected, plan)
        #expect(proxied.state == .sendingPrelude(endpoint: 1, address: 0))
        #expect(proxied.handle(.preludeSent, plan) == .startRelay)
    }

    @Test func bothHalvesEndingClosesWithAFin() throws {
        let plan = try Self.plan()
        var c = Self.accepted()
        _ = c.handle(.start(failedTargets: 0), plan)
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
        _ = c.handle(.start(failedTargets: 0), plan)
        #expect(c.handle(.close(reset: false), plan) == .beginClose)
        #expect(c.handle(.close(reset: true), plan) == Connection.Operation.none)
        #expect(c.handle(.close(reset: false), plan) == Connection.Operation.none)
        #expect(c.state == .closing(reset: true))
        // The dial's own completions arriving after the close began change nothing.
        #expect(c.handle(.attemptFailed(nextAddress: false), plan) == Connection.Operation.none)
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
        // An answer for a connection that is not waiting for one.
        await #expect(processExitsWith: .failure) {
            var c = ConnectionMachineTests.accepted()
            let plan = try ConnectionMachineTests.plan()
            _ = c.handle(.start(failedTargets: 0), plan)
            _ = c.handle(.resolved, plan)
        }
        // Settling with an operation still in flight would free a slot the kernel uses.
        await #expect(processExitsWith: .failure) {
            var c = ConnectionMachineTests.accepted()
            let plan = try ConnectionMachineTests.plan()
            _ = c.handle(.start(failedTargets: 0), plan)
            _ = c.handle(.close(reset: true), plan)
            c.inFlight = 1
            _ = c.handle(.settled, plan)
        }
    }
}
