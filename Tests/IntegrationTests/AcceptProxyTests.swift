import Foundation
import PortunusProxyProtocol
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `accept_proxy`: a real load balancer in front (HAProxy, nginx) prepends a PROXY
/// header; the forwarder reads it and sends the real client on to a real receiver
/// behind (HAProxy `accept-proxy`, nginx `proxy_protocol`), which must report the
/// original client, not the load balancer.
@Suite(.serialized) struct AcceptProxyTests {
    static func config(listen: UInt16, accept: String, target: UInt16, outbound: String?, targetExtra: String = "",
                       ruleExtra: String = "") -> String {
        let proxy = outbound.map { ", proxy_protocol = \"\($0)\"" } ?? ""
        return """
        [global]
        shutdown_drain_secs = 1
        [[rule]]
        name = "edge"
        listen_port = \(listen)
        accept_proxy = "\(accept)"
        \(ruleExtra)
        targets = [ { host = "127.0.0.1", port = \(target)\(proxy)\(targetExtra) } ]

        """
    }

    /// An HTTP/1.0 GET through `port` from `client`; the response body.
    static func request(_ client: TestSocket) throws -> String {
        try client.sendAll(Array("GET / HTTP/1.0\r\nHost: test\r\n\r\n".utf8))
        return String(decoding: try client.receiveAll(), as: UTF8.self)
    }

    /// The issue's chains: LB (v1 or v2) → portunus-uring (accept_proxy = "any") → receiver
    /// (told by a v1 or a v2 header), IPv4 and IPv6 clients. The client connects from
    /// 127.0.0.2 (IPv4) so that it is told apart from the LB on 127.0.0.1, and its port
    /// differs from the LB's outbound one in both families.
    @Test(arguments: SenderProcess.Kind.allCases, ["v1", "v2"])
    func theReceiverSeesTheClientInFrontOfTheLoadBalancer(sender kind: SenderProcess.Kind, outbound: String) throws {
        for receiverKind in ReceiverProcess.Kind.allCases {
            let receiver = try ReceiverProcess(receiverKind)
            let listen = freePort()
            let forwarder = try ForwarderProcess(config: Self.config(listen: listen, accept: "any", target: receiver.port, outbound: outbound))
            let sender = try SenderProcess(kind, target: listen)
            for (host, source) in [("127.0.0.1", "127.0.0.2"), ("::1", "::1")] {
                let client = try TestSocket.connect(host, sender.port, receiveTimeoutSecs: 10, from: source)
                let me = client.localAddress
                let response = try Self.request(client)
                let what = "\(kind) → \(outbound) → \(receiverKind), \(host): \(response) \(forwarder.stderrText.suffix(800))"
                #expect(response.contains("src=\(me.host):\(me.port) dst=\(host):\(sender.port)\n"), "\(what)")
                if receiverKind == .haproxy && outbound == "v2" {
                    // HAProxy's v2 header's unique id is passed on unchanged; a v1 one has none.
                    let id = kind == .haproxyV2 ? SenderProcess.uniqueIDHex(clientHost: me.host, clientPort: me.port) : ""
                    #expect(response.contains("unique_id=\(id)\n"), "\(what)")
                }
            }
            sender.stop()
            let result = forwarder.stop()
            #expect(result.exitCode == 0)
            #expect(result.stderr.contains("proxy_in_rejected=0"), "\(result.stderr.suffix(1500))")
        }
    }

    /// TLVs sent in on a v2 header go out unchanged on a v2 target; our own unique id
    /// (the one the debug log names) replaces an inbound one when the target asks for
    /// it; a CRC32C we add is one HAProxy checks and accepts.
    @Test func tlvsArePassedOnAndOursAdded() throws {
        let receiver = try ReceiverProcess(.haproxy)
        let ports = freePorts(2)
        let config = """
        [global]
        log_level = "debug"
        shutdown_drain_secs = 1
        [[rule]]
        name = "pass"
        listen_port = \(ports[0])
        accept_proxy = "v2"
        targets = [ { host = "127.0.0.1", port = \(receiver.port), proxy_protocol = "v2" } ]
        [[rule]]
        name = "ours"
        listen_port = \(ports[1])
        accept_proxy = "v2"
        targets = [ { host = "127.0.0.1", port = \(receiver.port), proxy_protocol = "v2", proxy_protocol_unique_id = true, proxy_protocol_crc32c = true } ]

        """
        // The oracle checks CRC32Cs: a header whose checksum is off gets no answer from it.
        var bad = try ProxyHeader.encodeV2(source: ProxyAddress(ipv4: (192, 0, 2, 1), port: 1),
                                           destination: ProxyAddress(ipv4: (192, 0, 2, 2), port: 2), crc32c: true).get()
        bad[bad.count - 1] ^= 0xFF
        let direct = try TestSocket.connect("127.0.0.1", receiver.port, receiveTimeoutSecs: 10)
        try direct.sendAll(bad)
        let refused = (try? Self.request(direct)) ?? ""
        #expect(!refused.contains("200"), "HAProxy answered a header with a wrong CRC32C: \(refused)")
        let forwarder = try ForwarderProcess(config: config, arguments: ["--log-level", "debug"])
        let client4 = ProxyAddress(ipv4: (203, 0, 113, 7), port: 40000), server4 = ProxyAddress(ipv4: (198, 51, 100, 1), port: 443)
        let header = try ProxyHeader.encodeV2(source: client4, destination: server4,
                                              tlvs: [.authority("edge.example"), .uniqueID(Array("req-42".utf8)),
                                                     ProxyTLV(type: ProxyTLVType(rawValue: 0xEA), value: [0x01] + Array("vpce-0123456789abcdef0".utf8))]).get()
        let passed = try TestSocket.connect("127.0.0.1", ports[0], receiveTimeoutSecs: 10)
        try passed.sendAll(header)
        let first = try Self.request(passed)
        #expect(first.contains("src=203.0.113.7:40000 dst=198.51.100.1:443\n"), "\(first)")
        #expect(first.contains("authority=edge.example unique_id=\(Array("req-42".utf8).map { String(format: "%02X", $0) }.joined())\n"), "\(first)")

        let ours = try TestSocket.connect("127.0.0.1", ports[1], receiveTimeoutSecs: 10)
        try ours.sendAll(header)
        let second = try Self.request(ours)
        #expect(second.contains("src=203.0.113.7:40000 dst=198.51.100.1:443\n"), "\(second)")
        #expect(second.contains("authority=edge.example"), "\(second)")
        let result = forwarder.stop()
        // The id HAProxy saw is the one the forwarder logged for that connection.
        let logged = result.stderr.split(separator: "\n").first { $0.contains("event=rule.conn_closed") && $0.contains("rule=ours") }
        let id = try #require(logged?.split(separator: " ").first { $0.hasPrefix("unique_id=") }?.dropFirst("unique_id=".count), "\(result.stderr.suffix(2000))")
        #expect(id.count == 32)
        #expect(second.contains("unique_id=\(id.uppercased())\n"), "\(second) vs \(id)")
        #expect(logged?.contains("client=203.0.113.7:40000") == true, "\(String(describing: logged))")
    }

    /// A LOCAL header (a load balancer's health check) leaves the connection's own
    /// addresses in force.
    @Test func aLocalHeaderMeansTheRealPeer() throws {
        let receiver = try ReceiverProcess(.nginx)
        let listen = freePort()
        let forwarder = try ForwarderProcess(config: Self.config(listen: listen, accept: "any", target: receiver.port, outbound: "v1"))
        let client = try TestSocket.connect("127.0.0.1", listen, receiveTimeoutSecs: 10)
        let me = client.localAddress
        try client.sendAll(try ProxyHeader.encodeV2(command: .local, source: nil, destination: nil).get())
        let response = try Self.request(client)
        #expect(response.contains("src=127.0.0.1:\(me.port) dst=127.0.0.1:\(listen)\n"), "\(response)")
        #expect(forwarder.stop().exitCode == 0)
    }

    /// A header split across many segments is read as it comes, and payload sent right
    /// behind a header loses no byte (the header is peeked, then exactly its bytes taken).
    @Test(arguments: ["buffers", "splice", "auto"])
    func splitHeadersAndPayloadBehindThem(relay: String) throws {
        let backend = try TestBackend(.echo)
        let listen = freePort()
        let forwarder = try ForwarderProcess(config: Self.config(listen: listen, accept: "any", target: backend.port, outbound: nil),
                                             arguments: ["--relay", relay])
        let v1 = Array("PROXY TCP4 192.0.2.1 192.0.2.2 1234 80\r\n".utf8)
        let v2 = try ProxyHeader.encodeV2(source: ProxyAddress(ipv6High: 0x2001_0DB8_0000_0000, low: 1, port: 1),
                                          destination: ProxyAddress(ipv6High: 0x2001_0DB8_0000_0000, low: 2, port: 2),
                                          tlvs: [.authority("split.example")]).get()
        for header in [v1, v2] {
            // One byte a segment, 5 ms apart.
            let client = try TestSocket.connect("127.0.0.1", listen, receiveTimeoutSecs: 10)
            var one: Int32 = 1
            setsockopt(client.fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            for byte in header {
                try client.sendAll([byte])
                usleep(5_000)
            }
            let payload = randomBytes(5000, seed: UInt64(header.count))
            try client.sendAll(payload)
            client.shutdownWrite()
            #expect(try client.receiveAll() == payload)
            // The header and the payload in one write.
            let together = try TestSocket.connect("127.0.0.1", listen, receiveTimeoutSecs: 10)
            let bulk = randomBytes(1 << 20, seed: 9)
            let sender = Thread { try? together.sendAll(header + bulk); together.shutdownWrite() }
            sender.start()
            #expect(try together.receiveAll() == bulk)
        }
        let result = forwarder.stop()
        #expect(result.exitCode == 0)
        #expect(result.stderr.contains("conns_total=4") && result.stderr.contains("proxy_in_rejected=0"))
        // The headers are not payload.
        #expect(result.stderr.contains("bytes_in=\(2 * 5000 + 2 * (1 << 20))"))
    }

    /// Malformed, truncated, slow, oversized and wrong-version headers: each client is
    /// reset, counted and logged, no upstream is dialled and nothing is forwarded.
    @Test func badHeadersAreRejectedBeforeAnyDial() throws {
        let backend = try TestBackend(.echo)
        let listen = freePort()
        let forwarder = try ForwarderProcess(config: Self.config(listen: listen, accept: "v2", target: backend.port, outbound: nil,
                                                                 ruleExtra: "accept_proxy_timeout_secs = 1"))
        let valid = try ProxyHeader.encodeV2(source: ProxyAddress(ipv4: (192, 0, 2, 1), port: 1),
                                             destination: ProxyAddress(ipv4: (192, 0, 2, 2), port: 2)).get()
        var oversized = Array(valid.prefix(16))
        oversized[14] = 0x08   // length 2,048: past the 512 bytes taken
        let cases: [(String, [UInt8], Bool)] = [
            ("malformed", Array("GET / HTTP/1.1\r\n\r\n".utf8), false),
            ("truncated", Array(valid.prefix(20)), true),
            ("oversized", oversized + [UInt8](repeating: 0, count: 100), false),
            ("wrong version", Array("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n".utf8), false),
        ]
        // A load balancer's TCP health check: connected and closed without a byte. Not a
        // refused header (not counted below), and closed with a FIN.
        let check = try TestSocket.connect("127.0.0.1", listen, receiveTimeoutSecs: 5)
        check.close()
        for (name, bytes, closeAfter) in cases {
            let client = try TestSocket.connect("127.0.0.1", listen, receiveTimeoutSecs: 5)
            try client.sendAll(bytes + (closeAfter ? [] : Array("payload".utf8)))
            if closeAfter { client.shutdownWrite() }
            switch client.receiveOnce() {
            case let .success(got): #expect(got.isEmpty, "\(name): \(got.count) bytes came back")
            case .failure: break   // reset
            }
        }
        // Slow: one byte every 300 ms of a valid header, past the 1 s time box.
        let slow = try TestSocket.connect("127.0.0.1", listen, receiveTimeoutSecs: 5)
        let started = Date()
        var cut = false
        for byte in valid {
            if send(slow.fd, [byte], 1, Int32(MSG_NOSIGNAL)) != 1 { cut = true; break }
            usleep(300_000)
            if Date().timeIntervalSince(started) > 4 { break }
        }
        if !cut, case .success(let got) = slow.receiveOnce() { #expect(got.isEmpty) }
        #expect(Date().timeIntervalSince(started) < 4, "the slow client was not cut within the time box")
        let result = forwarder.stop()
        #expect(backend.accepted == 0, "an upstream was dialled")
        #expect(result.stderr.contains("proxy_in_rejected=5"), "\(result.stderr.suffix(2500))")
        #expect(result.stderr.contains("bytes_in=0 bytes_out=0"))
        #expect(result.stderr.contains("event=rule.proxy_in_rejected"))
    }

    /// A stop does not wait its drain budget for a client still sending its header: no
    /// payload has moved, and it will not be served now.
    @Test func aStopCutsClientsStillSendingTheirHeader() throws {
        let backend = try TestBackend(.echo)
        let listen = freePort()
        let config = Self.config(listen: listen, accept: "v1", target: backend.port, outbound: nil)
            .replacingOccurrences(of: "shutdown_drain_secs = 1", with: "shutdown_drain_secs = 60")
        let forwarder = try ForwarderProcess(config: config)
        let client = try TestSocket.connect("127.0.0.1", listen, receiveTimeoutSecs: 10)
        try client.sendAll(Array("PROXY TCP4 192.0.2.1".utf8))
        usleep(200_000)
        let stopping = Date()
        let result = forwarder.stop(timeoutSecs: 20)
        #expect(result.exitCode == 0)
        #expect(Date().timeIntervalSince(stopping) < 5, "the stop waited for the header reader")
        #expect(backend.accepted == 0)
    }
}
