import Foundation
import PortunusStats
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// SIGHUP: the file re-read and applied while clients keep connecting.
@Suite(.serialized) struct ReloadTests {
    /// Two files a reload alternates between: `web` changes target and PROXY setting,
    /// `stay` is the same in both, `extra` is only in the first.
    struct Files {
        let web: UInt16, stay: UInt16, extra: UInt16
        let first: TestBackend, second: TestBackend

        func text(_ withExtra: Bool, drainSecs: Int = 0) -> String {
            var text = """
            [global]
            shutdown_drain_secs = \(drainSecs)

            """
            if withExtra {
                text += """
                [[rule]]
                name = "web"
                listen_port = \(web)
                target = "127.0.0.1:\(first.port)"

                [[rule]]
                name = "extra"
                listen_port = \(extra)
                target = "127.0.0.1:\(first.port)"

                """
            } else {
                text += """
                [[rule]]
                name = "web"
                listen_port = \(web)
                targets = [ { host = "127.0.0.1", port = \(second.port), proxy_protocol = "v1" } ]

                """
            }
            text += """
            [[rule]]
            name = "stay"
            listen_port = \(stay)
            target = "127.0.0.1:\(first.port)"

            """
            return text
        }
    }

    /// An echo round trip of a payload tagged with `id`; a PROXY v1 line the forwarder
    /// sent ahead of it (the backend echoes it too) must name this client's own port.
    /// nil when byte-exact.
    static func roundTrip(_ port: UInt16, id: Int) -> String? {
        let payload = HostileTraffic.tagged(id, size: 512 + id % 3000)
        do {
            let client = try TestSocket.connect("127.0.0.1", port, receiveTimeoutSecs: 10)
            try client.sendAll(payload)
            client.shutdownWrite()
            var echoed = try client.receiveAll()
            if echoed.starts(with: Array("PROXY ".utf8)) {
                guard let end = echoed.firstIndex(of: UInt8(ascii: "\n")) else { return "a PROXY line without its end" }
                let line = String(decoding: echoed[..<end], as: UTF8.self)
                let clientPort = client.localAddress.port
                guard line == "PROXY TCP4 127.0.0.1 127.0.0.1 \(clientPort) \(port)\r" else { return "PROXY line \(line) for client port \(clientPort)" }
                echoed.removeSubrange(...end)
            }
            return echoed == payload ? nil : "\(echoed.count) of \(payload.count) bytes back, not the same"
        } catch {
            return "port \(port): \(error)"
        }
    }

    /// What the process holds, by kind (pipes apart: a pool whose size follows the load).
    static func descriptorKinds(_ forwarder: ForwarderProcess) -> [String: Int] {
        var kinds: [String: Int] = [:]
        for target in forwarder.fileDescriptorTargets where !target.hasPrefix("pipe:") {
            let kind = target.hasPrefix("socket:") ? "socket" : target
            kinds[kind, default: 0] += 1
        }
        return kinds
    }

    /// The test: 50 reloads alternating two valid files under continuous load,
    /// and invalid files in between. No connect to a port both files have ever fails and
    /// every byte comes back to its own client; the added rule serves, the removed one
    /// refuses; an invalid file changes nothing; no descriptor or thread is left behind.
    @Test func fiftyReloadsUnderLoadLoseNoConnection() throws {
        let first = try TestBackend(.echo), second = try TestBackend(.echo)
        let ports = freePorts(3)
        let files = Files(web: ports[0], stay: ports[1], extra: ports[2], first: first, second: second)
        let forwarder = try ForwarderProcess(config: files.text(true), arguments: ["--workers", "2"])
        // Taken before any connection (one still closing would count its two sockets).
        let kindsBefore = Self.descriptorKinds(forwarder)
        let threadsBefore = forwarder.threadCount
        #expect(Self.roundTrip(files.extra, id: 0) == nil)

        // One connection held open across every reload, on a port both files keep.
        let held = try TestSocket.connect("127.0.0.1", files.stay, receiveTimeoutSecs: 10)
        let tally = Tally()
        let stop = Locked(false)
        let clients = (0..<4).map { worker in
            Thread {
                var id = worker * 1_000_000 + 1
                while !stop.value {
                    tally.record(Self.roundTrip(id % 2 == 0 ? files.web : files.stay, id: id))
                    id += 1
                }
            }
        }
        for client in clients { client.start() }
        defer { stop.value = true }

        var invalid = 0
        for round in 0..<50 {
            let withExtra = round % 2 == 1
            #expect(try forwarder.reload(config: files.text(withExtra)), "reload \(round) failed: \(forwarder.stderrText.suffix(1500))")
            if withExtra {
                #expect(Self.roundTrip(files.extra, id: 10_000_000 + round) == nil, "the added rule does not serve after reload \(round)")
            } else {
                // A drain budget of 0: the removed rule's port refuses at once.
                #expect(Self.roundTrip(files.extra, id: 10_000_000 + round) != nil, "the removed rule still serves after reload \(round)")
            }
            let message = HostileTraffic.tagged(round, size: 64)
            try held.sendAll(message)
            #expect(try held.receive(exactly: 64) == message, "the held connection lost bytes at reload \(round)")
            if round % 10 == 5 {
                // A file that does not validate: logged, and nothing changes.
                #expect(try forwarder.reload(config: files.text(true).replacingOccurrences(of: "listen_port = \(files.extra)", with: "listen_port = 0")) == false)
                invalid += 1
                #expect((Self.roundTrip(files.extra, id: 20_000_000 + round) == nil) == withExtra, "an invalid file changed the rules")
                #expect(Self.roundTrip(files.web, id: 20_000_001 + round) == nil)
            }
            usleep(20_000)
        }
        stop.value = true
        for client in clients { while !client.isFinished { usleep(1000) } }

        #expect(tally.count > 200, "the load made only \(tally.count) round trips")
        #expect(tally.failures.isEmpty, "\(tally.failures.count) of \(tally.count) round trips failed: \(tally.failures.prefix(5))")
        #expect(second.accepted > 0 && first.accepted > 0)
        held.close()
        let log = forwarder.stderrText
        #expect(log.components(separatedBy: "event=standalone.reload ").count - 1 == 50)
        #expect(log.components(separatedBy: "event=standalone.reload_failed ").count - 1 == invalid)
        #expect(log.contains("event=standalone.reload_invalid") && log.contains("validation.port_out_of_range"))
        #expect(log.contains("event=rule.removed rule=extra"))

        // The last file is the first one again: once the earlier engines have ended,
        // the process holds what it held before the reloads.
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline && (forwarder.threadCount != threadsBefore || Self.descriptorKinds(forwarder) != kindsBefore) { usleep(50_000) }
        #expect(forwarder.threadCount == threadsBefore)
        #expect(Self.descriptorKinds(forwarder) == kindsBefore)
        let result = forwarder.stop()
        #expect(result.exitCode == 0)
        // Counters ran on across every reload: the stopped line's total for `stay` counts
        // every connection it ever had (the held one, and the load's).
        let stayLine = result.stderr.split(separator: "\n").first { $0.contains("event=standalone.stopped") && $0.contains("rule=stay") }
        let total = stayLine.flatMap { line in line.split(separator: " ").first { $0.hasPrefix("conns_total=") } }
            .flatMap { Int($0.dropFirst("conns_total=".count)) } ?? -1
        #expect(total >= tally.count / 2, "stay counted \(total) connections of about \(tally.count / 2)")
    }

    /// On a port the new file drops, an open connection is cut once the drain budget is
    /// spent; on a port it keeps, it lives on. The budget is the new file's: started with
    /// 30 s and reloaded with 1 s, the cut comes after 1 s, and so does a stop's.
    @Test func droppedPortsDrainKeptPortsStay() throws {
        let first = try TestBackend(.echo), second = try TestBackend(.echo)
        let ports = freePorts(3)
        let files = Files(web: ports[0], stay: ports[1], extra: ports[2], first: first, second: second)
        let forwarder = try ForwarderProcess(config: files.text(true, drainSecs: 30))
        let onDropped = try TestSocket.connect("127.0.0.1", files.extra, receiveTimeoutSecs: 5)
        let onKept = try TestSocket.connect("127.0.0.1", files.stay, receiveTimeoutSecs: 5)
        for socket in [onDropped, onKept] {
            try socket.sendAll(Array("ping".utf8))
            #expect(try socket.receive(exactly: 4) == Array("ping".utf8))
        }
        #expect(try forwarder.reload(config: files.text(false, drainSecs: 1)))
        // Within the budget both still relay.
        try onDropped.sendAll(Array("pong".utf8))
        #expect(try onDropped.receive(exactly: 4) == Array("pong".utf8))
        usleep(1_600_000)
        if case .success(let bytes) = onDropped.receiveOnce() { #expect(bytes.isEmpty, "the dropped port's connection was not cut") }
        try onKept.sendAll(Array("still".utf8))
        #expect(try onKept.receive(exactly: 5) == Array("still".utf8))
        #expect(forwarder.stderrText.contains("event=standalone.reload_drain_expired"))
        // The old workers still hold the kept port's connection: the stop cuts it after
        // the new file's 1 s, not the 30 s they started with.
        let stopping = Date()
        let result = forwarder.stop(timeoutSecs: 10)
        #expect(result.exitCode == 0, "\(result.stderr.suffix(3000))")
        #expect(Date().timeIntervalSince(stopping) < 5)
    }

    /// A new port that cannot be bound leaves its rule out (`rule.failed`); the rest of
    /// the file applies.
    @Test func aPortThatCannotBeBoundLeavesItsRuleOut() throws {
        let backend = try TestBackend(.echo)
        let ports = freePorts(3)
        let forwarder = try ForwarderProcess(config: tcpRulesConfig([("a", ports[0], "127.0.0.1:\(backend.port)")]))
        // Someone else holds ports[1].
        let squatter = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(squatter) }
        #expect(withSocketAddress("127.0.0.1", ports[1]) { bind(squatter, $0, $1) } == 0)
        #expect(listen(squatter, 1) == 0)
        let file = tcpRulesConfig([("a", ports[0], "127.0.0.1:\(backend.port)"), ("blocked", ports[1], "127.0.0.1:\(backend.port)"),
                                   ("fresh", ports[2], "127.0.0.1:\(backend.port)")])
        #expect(try forwarder.reload(config: file))
        let log = forwarder.stderrText
        #expect(log.contains("event=rule.failed") && log.contains("rule=blocked"))
        #expect(log.contains("added=fresh") && log.contains("failed=blocked"))
        #expect(Self.roundTrip(ports[0], id: 1) == nil)
        #expect(Self.roundTrip(ports[2], id: 2) == nil)
        #expect(forwarder.stop().exitCode == 0)
    }

    /// A stats client connected across a reload is sent the new hello, then snapshots
    /// whose counters ran on for the rule both files have.
    @Test func statsClientsGetTheNewHello() throws {
        let first = try TestBackend(.echo), second = try TestBackend(.echo)
        let ports = freePorts(3)
        let files = Files(web: ports[0], stay: ports[1], extra: ports[2], first: first, second: second)
        let forwarder = try ForwarderProcess(config: files.text(true))
        for id in 0..<3 { #expect(Self.roundTrip(files.stay, id: id) == nil) }
        let reader = try StatsSocketReader(forwarder.statsSocketPath)
        let hello = try reader.json()
        #expect(hello["rules"]?.arrayValue?.count == 3)
        _ = try reader.json()
        #expect(try forwarder.reload(config: files.text(false)))
        var newHello: JSON?
        let deadline = Date().addingTimeInterval(5)
        while newHello == nil && Date() < deadline {
            let document = try reader.json()
            if document["v"] != nil { newHello = document }
        }
        let rules = try #require(newHello?["rules"]?.arrayValue)
        #expect(rules.compactMap { $0["name"]?.stringValue } == ["web", "stay"])
        let snapshot = try reader.json()
        let stayID = String(BLAKE3.ruleID("stay"))
        let stay = snapshot["r"]?.arrayValue?.first { $0["id"]?.stringValue == stayID }
        #expect(stay?["conns_total"]?.uint64Value == 3)
        // Two reloads within one refresh period: the hello the client gets is the last one's.
        #expect(try forwarder.reload(config: files.text(true)))
        #expect(try forwarder.reload(config: files.text(false) + "[[rule]]\nname = \"late\"\nlisten_port = \(freePort())\ntarget = \"127.0.0.1:\(first.port)\"\n"))
        // (A snapshot may fall between them: then the first file's hello comes first.)
        var last: [String] = []
        let until = Date().addingTimeInterval(5)
        while last != ["web", "stay", "late"] && Date() < until {
            let document = try reader.json()
            if document["v"] != nil { last = document["rules"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? [] }
        }
        #expect(last == ["web", "stay", "late"])
        #expect(forwarder.stop().exitCode == 0)
    }

    /// Reloads faster than connections end: each earlier configuration keeps one
    /// connection open on a kept port. Past 8 waiting without a deadline the oldest is
    /// stopped (drain budget, 60 s here); past 16 in all the oldest is reset at once; the
    /// process's threads stay bounded, and the newest connections keep relaying.
    @Test func earlierConfigurationsAreBounded() throws {
        let backend = try TestBackend(.echo)
        let ports = freePorts(2)
        func file(_ round: Int) -> String {
            tcpRulesConfig([("stay", ports[0], "127.0.0.1:\(backend.port)"), ("r\(round % 2)", ports[1], "127.0.0.1:\(backend.port)")], drainSecs: 60)
        }
        let forwarder = try ForwarderProcess(config: file(0), arguments: ["--workers", "2"])
        var held: [TestSocket] = []
        for round in 1...20 {
            let socket = try TestSocket.connect("127.0.0.1", ports[0], receiveTimeoutSecs: 5)
            try socket.sendAll([UInt8(round)])
            #expect(try socket.receive(exactly: 1) == [UInt8(round)])
            held.append(socket)
            #expect(try forwarder.reload(config: file(round)))
        }
        let log = forwarder.stderrText
        #expect(log.contains("forced_stops=1"), "no earlier configuration was stopped")
        #expect(log.contains("forced_cuts=1"), "no earlier configuration was cut")
        // The engines cut at once end, and are joined within a second or so.
        let deadline = Date().addingTimeInterval(10)
        while forwarder.threadCount > 1 + 2 * 17 + 1 && Date() < deadline { usleep(100_000) }
        #expect(forwarder.threadCount <= 1 + 2 * 17 + 1, "\(forwarder.threadCount) threads")
        // The oldest connections were reset; the newest relay on.
        if case .success(let bytes) = held[0].receiveOnce() { #expect(bytes.isEmpty) }
        for socket in held.suffix(8) {
            try socket.sendAll([7])
            #expect(try socket.receive(exactly: 1) == [7])
        }
        for socket in held { socket.close() }
        #expect(forwarder.stop(timeoutSecs: 20).exitCode == 0)
    }

    /// A UDP port both files keep goes on relaying across a reload, and the new target
    /// of a changed UDP rule gets the datagrams of new flows.
    @Test func udpPortsKeptAcrossAReload() throws {
        let echoA = try UDPEchoBackend(), echoB = try UDPEchoBackend()
        let port = freeUDPListenPort()
        func file(_ target: UInt16) -> String {
            "[global]\nshutdown_drain_secs = 0\n[[rule]]\nname = \"dns\"\nprotocol = \"udp\"\nlisten_port = \(port)\ntarget = \"127.0.0.1:\(target)\"\n"
        }
        let forwarder = try ForwarderProcess(config: file(echoA.port))
        let client = try UDPSocket()
        try client.send(Array("one".utf8), to: port)
        #expect(client.receive()?.bytes == Array("one".utf8))
        #expect(try forwarder.reload(config: file(echoB.port)))
        try client.send(Array("two".utf8), to: port)
        #expect(client.receive()?.bytes == Array("two".utf8))
        #expect(echoA.sources.count == 1 && echoB.sources.count == 1)
        #expect(forwarder.stop().exitCode == 0)
    }
}

/// A value shared by threads.
final class Locked<Value: Sendable>: @unchecked Sendable {
    // @unchecked: every access holds `lock`.
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}
