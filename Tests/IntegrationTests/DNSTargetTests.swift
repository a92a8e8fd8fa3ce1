import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// DNS-named targets against a real DNS server (dnsmasq on loopback, `--dns-server`):
/// forwarding, TTL changes, address order, stale answers, a blackholed resolver.
@Suite struct DNSTargetTests {
    static func name(_ label: String) -> String { "\(label).\(DnsmasqServer.domain)" }

    static func forwarder(_ config: String, _ dns: DnsmasqServer, debug: Bool = false) throws -> ForwarderProcess {
        try ForwarderProcess(config: config, arguments: ["--dns-server", "127.0.0.1:\(dns.port)"] + (debug ? ["--log-level", "debug"] : []))
    }

    /// Connects, reads what the backend says until it half-closes, and half-closes back.
    static func greeting(_ port: UInt16) throws -> String {
        let client = try TestSocket.connect("127.0.0.1", port)
        defer { client.close() }
        let bytes = try client.receiveAll()
        client.shutdownWrite()
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The value of `key=` in the forwarder's `stopped` line for `rule`.
    static func stoppedCounter(_ stderr: String, rule: String, _ key: String) -> Int? {
        guard let line = stderr.split(separator: "\n").first(where: { $0.contains(" stopped ") && $0.contains(" rule=\(rule) ") || $0.contains(" stopped ") && $0.hasSuffix(" rule=\(rule)") }) else { return nil }
        guard let field = line.split(separator: " ").first(where: { $0.hasPrefix("\(key)=") }) else { return nil }
        return Int(field.dropFirst(key.count + 1))
    }

    @Test func aNamedTargetForwardsByteExactlyAndNewConnectionsFollowANewAnswerAfterTheTTL() throws {
        let old = try TestBackend(.echo)
        let new = try TestBackend(.greetThenHalfClose(Array("new".utf8)), host: "127.0.0.2", port: old.port)
        let name = Self.name("svc")
        let dns = try DnsmasqServer(hosts: [("127.0.0.1", name)], ttl: 5)
        let listen = freePort()
        let forwarder = try Self.forwarder(tcpRuleConfig(name: "named", listenPort: listen, target: "\(name):\(old.port)"), dns, debug: true)

        let open = try TestSocket.connect("127.0.0.1", listen)
        let first = randomBytes(256 * 1024, seed: 11)
        try open.sendAll(first)
        #expect(try open.receive(exactly: first.count) == first)
        let resolvedAt = Date()

        try dns.setHosts([("127.0.0.2", name)])
        // Before the TTL ends the cached answer still serves.
        let early = try TestSocket.connect("127.0.0.1", listen)
        try early.sendAll(Array("early".utf8))
        #expect(try early.receive(exactly: 5) == Array("early".utf8))
        early.close()
        Thread.sleep(until: resolvedAt.addingTimeInterval(5.5))
        #expect(try Self.greeting(listen) == "new")
        // The connection opened on the old answer is untouched.
        let second = randomBytes(64 * 1024, seed: 12)
        try open.sendAll(second)
        #expect(try open.receive(exactly: second.count) == second)
        open.shutdownWrite()
        #expect(try open.receiveAll().isEmpty)

        let result = forwarder.stop()
        #expect(result.exitCode == 0)
        #expect(old.accepted == 2 && new.accepted == 1)
        let resolved = result.stderr.split(separator: "\n").filter { $0.contains("rule.dns_resolved") && $0.contains("name=\(name)") }
        #expect(resolved.count == 2, "\(result.stderr)")
        #expect(resolved.first?.contains("addresses=127.0.0.1") == true && resolved.last?.contains("addresses=127.0.0.2") == true)
        #expect(resolved.first?.contains("rule=named") == true)
        #expect(Self.stoppedCounter(result.stderr, rule: "named", "dns_failures") == 0)
    }

    @Test func preferIPv6DialsTheAAAAAnswerFirst() throws {
        let v4 = try TestBackend(.greetThenHalfClose(Array("v4".utf8)))
        let v6 = try TestBackend(.greetThenHalfClose(Array("v6".utf8)), host: "::1", port: v4.port)
        let name = Self.name("dual")
        let dns = try DnsmasqServer(hosts: [("127.0.0.1", name), ("::1", name)], ttl: 60)
        let plain = freePort(), six = freePort()
        let config = """
        [defaults]
        prefer_ipv6 = true
        [[rule]]
        name = "plain"
        listen_port = \(plain)
        target = "\(name):\(v4.port)"
        prefer_ipv6 = false
        [[rule]]
        name = "six"
        listen_port = \(six)
        target = "\(name):\(v4.port)"
        """
        let forwarder = try Self.forwarder(config, dns)
        #expect(try Self.greeting(plain) == "v4")
        #expect(try Self.greeting(six) == "v6")
        #expect(forwarder.stop().exitCode == 0)
        #expect(v4.accepted == 1 && v6.accepted == 1)
        // Both rules share one name: one lookup (an A and an AAAA query).
        #expect(dns.queries(for: name) == 2)
    }

    @Test func aRefusingFirstAddressFallsThroughToTheSecond() throws {
        let v6 = try TestBackend(.greetThenHalfClose(Array("v6".utf8)), host: "::1")
        try #require(canConnect("127.0.0.1", v6.port) == false, "nothing may listen on 127.0.0.1 at the IPv6 backend's port")
        let name = Self.name("half")
        let dns = try DnsmasqServer(hosts: [("127.0.0.1", name), ("::1", name)], ttl: 60)
        let listen = freePort()
        let forwarder = try Self.forwarder(tcpRuleConfig(name: "half", listenPort: listen, target: "\(name):\(v6.port)"), dns)
        #expect(try Self.greeting(listen) == "v6")
        let result = forwarder.stop()
        #expect(Self.stoppedCounter(result.stderr, rule: "half", "connect_failures") == 1)
        // One address refusing is not a failed target.
        #expect(Self.stoppedCounter(result.stderr, rule: "half", "target_failovers_total") == 0)
    }

    @Test func aDeadAddressCostsOneConnectTimeoutThenIsDialledLast() throws {
        // 127.0.0.1:P never answers a SYN (a full accept queue); [::1]:P serves.
        let hole = try TestBackend(.neverAccept)
        let filler = try TestSocket.connect("127.0.0.1", hole.port)
        defer { filler.close() }
        let v6 = try TestBackend(.greetThenHalfClose(Array("v6".utf8)), host: "::1", port: hole.port)
        let name = Self.name("deadfirst")
        let dns = try DnsmasqServer(hosts: [("127.0.0.1", name), ("::1", name)], ttl: 60)
        let listen = freePort()
        let forwarder = try ForwarderProcess(config: tcpRuleConfig(name: "dead", listenPort: listen, target: "\(name):\(hole.port)"),
                                             arguments: ["--dns-server", "127.0.0.1:\(dns.port)", "--workers", "1"])
        var waits: [Double] = []
        for _ in 0..<3 {
            let start = Date()
            #expect(try Self.greeting(listen) == "v6")
            waits.append(Date().timeIntervalSince(start))
        }
        #expect(waits[0] >= 2.9 && waits[0] < 6, "\(waits)")
        #expect(waits[1] < 1 && waits[2] < 1, "\(waits)")
        let result = forwarder.stop()
        #expect(v6.accepted == 3)
        #expect(Self.stoppedCounter(result.stderr, rule: "dead", "connect_failures") == 1)
        #expect(Self.stoppedCounter(result.stderr, rule: "dead", "target_failovers_total") == 0)
    }

    @Test func aUDPRuleWithANamedTargetDropsTheFirstDatagramWhileTheNameIsLookedUp() throws {
        let backend = try UDPEchoBackend()
        let name = Self.name("udp")
        let dns = try DnsmasqServer(hosts: [("127.0.0.1", name)], ttl: 60)
        let listen = freeUDPListenPort()
        let forwarder = try Self.forwarder(UDPForwardingTests.udpConfig("named-udp", listen: listen, target: "\(name):\(backend.port)"), dns)
        let client = try UDPSocket(receiveTimeoutMs: 300)
        try client.send([1], to: listen)
        #expect(client.receive() == nil, "no flow until the name is known")
        var answered = false
        for attempt in 0..<10 where !answered {
            try client.send([2, UInt8(attempt)], to: listen)
            answered = client.receive()?.bytes == [2, UInt8(attempt)]
        }
        #expect(answered)
        let result = forwarder.stop()
        #expect(Self.stoppedCounter(result.stderr, rule: "named-udp", "flows_pending_drops") == 1)
        #expect(Self.stoppedCounter(result.stderr, rule: "named-udp", "flows_active") == 0)
    }

    @Test func staleAnswersServeForThirtySecondsAfterTheServerDiesThenTheRuleFails() throws {
        let backend = try TestBackend(.greetThenHalfClose(Array("ok".utf8)))
        let name = Self.name("stale")
        let dns = try DnsmasqServer(hosts: [("127.0.0.1", name)], ttl: 5)
        let listen = freePort()
        let forwarder = try Self.forwarder(tcpRuleConfig(name: "stale", listenPort: listen, target: "\(name):\(backend.port)"), dns)
        #expect(try Self.greeting(listen) == "ok")
        let resolvedAt = Date()
        dns.kill9()
        // Fresh for 5 s, then stale for 30 s more: every connection is served.
        var served = 1
        while Date() < resolvedAt.addingTimeInterval(33) {
            #expect(try Self.greeting(listen) == "ok")
            served += 1
            Thread.sleep(forTimeInterval: 1.5)
        }
        Thread.sleep(until: resolvedAt.addingTimeInterval(36.5))
        // Past the stale window: the name fails, the client is closed without a byte.
        let client = try TestSocket.connect("127.0.0.1", listen)
        #expect(((try? client.receiveAll()) ?? []).isEmpty)
        client.close()
        let result = forwarder.stop()
        #expect(backend.accepted == served)
        let failures = try #require(Self.stoppedCounter(result.stderr, rule: "stale", "dns_failures"))
        // Each stale use counts, and so does the final failure.
        #expect(failures >= served - 4 && failures <= served + 1, "\(failures) dns_failures for \(served) connections")
        #expect(result.stderr.contains("rule.dns_failed"))
    }

    @Test func aBlackholedResolverFailsItsRuleAfterTheConnectTimeoutAndSlowsNoOtherRule() throws {
        let echo = try TestBackend(.echo)
        let name = Self.name("hole")
        let dns = try DnsmasqServer(hosts: [("127.0.0.1", name)], ttl: 60)
        dns.pause()
        defer { dns.resume() }
        let named = freePort(), direct = freePort()
        let config = tcpRulesConfig([("named", named, "\(name):\(echo.port)"), ("direct", direct, "127.0.0.1:\(echo.port)")])
        let forwarder = try Self.forwarder(config, dns)

        // Twenty clients connected at once wait for the name, each read on a thread of its own.
        let waiters = 20
        let outcomes = NSLock()
        nonisolated(unsafe) var waited: [Double] = []
        let group = DispatchGroup()
        let start = Date()
        let clients = try (0..<waiters).map { _ in try TestSocket.connect("127.0.0.1", named) }
        for client in clients {
            group.enter()
            Thread {
                _ = try? client.receiveAll()
                client.close()
                outcomes.withLock { waited.append(Date().timeIntervalSince(start)) }
                group.leave()
            }.start()
        }
        // Meanwhile the other rule's round trips stay fast.
        var roundTrips: [Double] = []
        let until = Date().addingTimeInterval(2.5)
        while Date() < until {
            let start = Date()
            let client = try TestSocket.connect("127.0.0.1", direct)
            try client.sendAll([1, 2, 3])
            #expect(try client.receive(exactly: 3) == [1, 2, 3])
            client.close()
            roundTrips.append(Date().timeIntervalSince(start))
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(group.wait(timeout: .now() + 15) == .success)
        #expect(roundTrips.count >= 10)
        #expect(roundTrips.max()! < 1.0, "round trips on the other rule: \(roundTrips)")
        // Each waiting client is closed once the connect timeout (3 s) has run out.
        #expect(waited.count == waiters)
        #expect(waited.allSatisfy { $0 >= 2.5 && $0 < 8 }, "\(waited)")
        let result = forwarder.stop()
        #expect(Self.stoppedCounter(result.stderr, rule: "named", "dns_failures") == waiters)
        #expect(Self.stoppedCounter(result.stderr, rule: "direct", "dns_failures") == 0)
        #expect(echo.accepted == roundTrips.count)
    }

    @Test(arguments: ["valid_proxy_mixed.toml", "valid_portunus_full_example.toml"])
    func configsWithNamesThatDoNotResolveStillStart(file: String) throws {
        let dns = try DnsmasqServer(hosts: [], ttl: 60)
        var text = try String(contentsOf: Repository.fixtures.appendingPathComponent(file), encoding: .utf8)
        // The fixtures' own ports may be taken here: every listen port is moved to a free one.
        for port in ["8443", "2222"] { text = text.replacingOccurrences(of: "listen_port = \(port)", with: "listen_port = \(freePort())") }
        let range = RuleShapeTests.freeRange(2)
        try #require(range != 0)
        text = text.replacingOccurrences(of: "listen_ports = \"15432-15433\"", with: "listen_ports = \"\(range)-\(range + 1)\"")
        text = text.replacingOccurrences(of: "shutdown_drain_secs = 5", with: "shutdown_drain_secs = 0")
            .replacingOccurrences(of: "shutdown_drain_secs = 30", with: "shutdown_drain_secs = 0")
        let forwarder = try Self.forwarder(text, dns)
        #expect(forwarder.process.isRunning)
        #expect(forwarder.stop().exitCode == 0)
    }

    @Test func stoppingWhileConnectionsWaitForANameEndsCleanly() throws {
        let echo = try TestBackend(.echo)
        let name = Self.name("wait")
        let dns = try DnsmasqServer(hosts: [("127.0.0.1", name)], ttl: 60)
        dns.pause()
        defer { dns.resume() }
        let listen = freePort()
        let forwarder = try Self.forwarder(tcpRulesConfig([("wait", listen, "\(name):\(echo.port)")], drainSecs: 0), dns)
        let clients = try (0..<10).map { _ in try TestSocket.connect("127.0.0.1", listen) }
        Thread.sleep(forTimeInterval: 0.3)
        // With no drain budget, the waiting connections are cut at once: out of their
        // wait lists, their timers cancelled, the slots released.
        let start = Date()
        let result = forwarder.stop()
        #expect(result.exitCode == 0, "\(result.stderr)")
        #expect(Date().timeIntervalSince(start) < 2)
        #expect(Self.stoppedCounter(result.stderr, rule: "wait", "conns_active") == 0)
        for client in clients { #expect(((try? client.receiveAll()) ?? []).isEmpty) }
        #expect(echo.accepted == 0)
    }
}

/// Whether a TCP connect to host:port succeeds now.
func canConnect(_ host: String, _ port: UInt16) -> Bool {
    guard let socket = try? TestSocket.connect(host, port) else { return false }
    socket.close()
    return true
}
