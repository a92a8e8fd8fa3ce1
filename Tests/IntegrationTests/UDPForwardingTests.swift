import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// UDP rules through the real binary, on loopback: datagrams byte-exact and whole, flows,
/// the per-rule cap, idle expiry, ICMP eviction, and a TCP and a UDP rule on one port.
@Suite struct UDPForwardingTests {
    static func udpConfig(_ name: String = "udp", listen: UInt16, target: String, extra: String = "") -> String {
        """
        [global]
        shutdown_drain_secs = 0
        [[rule]]
        name = "\(name)"
        protocol = "udp"
        listen_port = \(listen)
        target = "\(target)"
        \(extra)

        """
    }

    @Test(arguments: ["127.0.0.1", "::1"])
    func datagramsFromOneByteTo65507ArriveWholeBothWays(host: String) throws {
        let backend = try UDPEchoBackend(host)
        let listen = freeUDPListenPort()
        let forwarder = try ForwarderProcess(config: Self.udpConfig(listen: listen, target: host.contains(":") ? "[\(host)]:\(backend.port)" : "\(host):\(backend.port)"))
        let client = try UDPSocket(host)
        let sizes = [1, 2, 100, 1400, 8192, 65_507]
        for (i, size) in sizes.enumerated() {
            let payload = randomBytes(size, seed: UInt64(i + 1))
            try client.send(payload, to: listen)
            let echo = try #require(client.receive(), "no echo of \(size) bytes")
            #expect(echo.bytes == payload)
            #expect(echo.fromPort == listen, "replies leave through the listen socket")
        }
        let result = forwarder.stop()
        #expect(result.exitCode == 0)
        let line = try #require(result.stderr.split(separator: "\n").first { $0.contains(" stopped ") && $0.contains(" rule=udp ") })
        #expect(line.contains("datagrams_in=6 ") && line.contains("datagrams_out=6 "))
        let total: Int = sizes.reduce(0, +)
        #expect(line.contains("bytes_in=\(total) ") && line.contains("bytes_out=\(total) "))
        // One flow: every datagram reached the backend from one source port.
        #expect(Set(backend.sources).count == 1)
    }

    @Test func aThousandConcurrentFlowsEachGetTheirOwnReplies() throws {
        let backend = try UDPEchoBackend()
        let listen = freeUDPListenPort()
        let forwarder = try ForwarderProcess(config: Self.udpConfig(listen: listen, target: "127.0.0.1:\(backend.port)", extra: "udp_max_flows = 2000"))
        let clients = try (0..<1000).map { _ in try UDPSocket(receiveTimeoutMs: 2000) }
        for (i, client) in clients.enumerated() { try client.send(Array("client-\(i)".utf8), to: listen) }
        var answered = 0
        for (i, client) in clients.enumerated() {
            if let echo = client.receive(), echo.bytes == Array("client-\(i)".utf8) { answered += 1 }
        }
        let result = forwarder.stop()
        let stopped = result.stderr.split(separator: "\n").last { $0.contains(" stopped ") } ?? ""
        #expect(answered == 1000, "\(stopped)")
        #expect(Set(backend.sources).count == 1000, "a flow (an upstream socket) per client")
        #expect(stopped.contains("flows_dropped_overflow=0 "))
    }

    @Test func aRuleAtItsFlowCapDropsNewClientsAndKeepsTheOldOnes() throws {
        let backend = try UDPEchoBackend()
        let listen = freeUDPListenPort()
        let forwarder = try ForwarderProcess(config: Self.udpConfig(listen: listen, target: "127.0.0.1:\(backend.port)", extra: "udp_max_flows = 10"))
        let clients = try (0..<10).map { _ in try UDPSocket() }
        for client in clients {
            try client.send([1], to: listen)
            #expect(client.receive()?.bytes == [1])
        }
        let eleventh = try UDPSocket(receiveTimeoutMs: 500)
        try eleventh.send([2], to: listen)
        #expect(eleventh.receive() == nil, "the 11th client gets nothing")
        for client in clients {
            try client.send([3], to: listen)
            #expect(client.receive()?.bytes == [3])
        }
        let result = forwarder.stop()
        #expect(result.stderr.contains("flows_dropped_overflow=1 "))
        #expect(Set(backend.sources).count == 10)
    }

    @Test func anIdleFlowExpiresAndTheNextDatagramComesFromANewSourcePort() throws {
        let backend = try UDPEchoBackend()
        let listen = freeUDPListenPort()
        let forwarder = try ForwarderProcess(config: Self.udpConfig(listen: listen, target: "127.0.0.1:\(backend.port)", extra: "udp_flow_idle_secs = 1"))
        let client = try UDPSocket()
        try client.send([1], to: listen)
        #expect(client.receive()?.bytes == [1])
        // Within the window the flow stays.
        Thread.sleep(forTimeInterval: 0.5)
        try client.send([2], to: listen)
        #expect(client.receive()?.bytes == [2])
        // 1–1.25 × the window after the last datagram, it is gone.
        Thread.sleep(forTimeInterval: 1.5)
        try client.send([3], to: listen)
        #expect(client.receive()?.bytes == [3])
        let sources = backend.sources
        #expect(sources.count == 3 && sources[0] == sources[1] && sources[2] != sources[1], "\(sources)")
        let result = forwarder.stop()
        #expect(result.stderr.contains("flows_active=0 "))
    }

    @Test func anICMPErrorEvictsTheFlowAndTheNextDatagramRebuildsIt() throws {
        let first = try UDPEchoBackend()
        let port = first.port
        let listen = freeUDPListenPort()
        let forwarder = try ForwarderProcess(config: Self.udpConfig(listen: listen, target: "127.0.0.1:\(port)"))
        let client = try UDPSocket(receiveTimeoutMs: 500)
        try client.send([1], to: listen)
        #expect(client.receive()?.bytes == [1])
        first.stop()   // the port now answers with ICMP port unreachable
        try client.send([2], to: listen)
        #expect(client.receive() == nil)
        Thread.sleep(forTimeInterval: 0.2)
        let second = try UDPEchoBackend(port: port)
        try client.send([3], to: listen)
        #expect(client.receive()?.bytes == [3])
        let result = forwarder.stop()
        #expect(result.stderr.contains("icmp_evict=1 "), "\(result.stderr)")
        #expect(second.sources.count == 1)
    }

    /// 127.0.0.2 is as local as 127.0.0.1, but a reply left to routing comes from
    /// 127.0.0.1: a client connected to 127.0.0.2, like one that wrote to a second
    /// address of a multi-homed host, would never see it.
    @Test func aReplyComesFromTheAddressTheClientWroteTo() throws {
        let backend = try UDPEchoBackend()
        let listen = freeUDPListenPort()
        let forwarder = try ForwarderProcess(config: Self.udpConfig(listen: listen, target: "127.0.0.1:\(backend.port)"))
        for host in ["127.0.0.2", "127.0.0.1", "127.0.0.3"] {
            let client = try UDPSocket()
            try client.connect(to: listen, host: host)
            for i in 1...3 {
                let payload = randomBytes(40 * i, seed: UInt64(i))
                try client.send(payload, to: listen, host: host)
                let echo = try #require(client.receive(), "no reply from \(host) to datagram \(i)")
                #expect(echo.bytes == payload)
            }
        }
        #expect(forwarder.stop().exitCode == 0)
    }

    @Test func aTCPAndAUDPRuleShareAPortNumber() throws {
        let udpBackend = try UDPEchoBackend()
        let tcpBackend = try TestBackend(.echo)
        let port = freeUDPListenPort()
        let config = """
        [global]
        shutdown_drain_secs = 0
        [[rule]]
        name = "tcp"
        protocol = "tcp"
        listen_port = \(port)
        target = "127.0.0.1:\(tcpBackend.port)"
        [[rule]]
        name = "udp"
        protocol = "udp"
        listen_port = \(port)
        target = "127.0.0.1:\(udpBackend.port)"
        """
        let forwarder = try ForwarderProcess(config: config)
        let stream = try TestSocket.connect("127.0.0.1", port)
        try stream.sendAll(Array("over tcp".utf8))
        #expect(try stream.receive(exactly: 8) == Array("over tcp".utf8))
        stream.close()
        let datagram = try UDPSocket()
        try datagram.send(Array("over udp".utf8), to: port)
        #expect(datagram.receive()?.bytes == Array("over udp".utf8))
        #expect(forwarder.stop().exitCode == 0)
    }
}
