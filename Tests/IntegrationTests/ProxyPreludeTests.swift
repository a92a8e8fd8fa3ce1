import Foundation
import PortunusProxyProtocol
import Testing
import TestSupport

/// The PROXY prelude checked by real receivers (nginx and HAProxy from Debian), not by
/// our own decoder: each answers with the client address the header told it, and that
/// must be the true client address and port seen by the test.
@Suite(.serialized) struct ProxyPreludeTests {
    static func proxyConfig(listen: UInt16, target: UInt16, version: String) -> String {
        """
        [global]
        shutdown_drain_secs = 1
        [[rule]]
        name = "pp"
        protocol = "tcp"
        listen_port = \(listen)
        targets = [ { host = "127.0.0.1", port = \(target), proxy_protocol = "\(version)" } ]
        """
    }

    @Test(arguments: ReceiverProcess.Kind.allCases, ["v1", "v2"])
    func receiverSeesTheRealClient(receiver kind: ReceiverProcess.Kind, version: String) throws {
        let receiver = try ReceiverProcess(kind)
        let listen = freePort()
        let forwarder = try ForwarderProcess(config: Self.proxyConfig(listen: listen, target: receiver.port, version: version))
        for host in ["127.0.0.1", "::1"] {
            let client = try TestSocket.connect(host, listen, receiveTimeoutSecs: 10)
            let me = client.localAddress
            try client.sendAll(Array("GET / HTTP/1.0\r\nHost: test\r\n\r\n".utf8))
            let response = String(decoding: try client.receiveAll(), as: UTF8.self)
            #expect(response.hasPrefix("HTTP/1.1 200") || response.hasPrefix("HTTP/1.0 200"), "\(kind) \(version) \(host): \(response) \(receiver.log)")
            #expect(response.contains("src=\(me.host):\(me.port) dst=\(host):\(listen)\n"), "\(kind) \(version) \(host): \(response)")
        }
        let result = forwarder.stop()
        #expect(result.exitCode == 0)
        #expect(result.stderr.contains("conns_total=2"))
        // The header is not payload: only the request bytes count as bytes_in.
        #expect(result.stderr.contains("bytes_in=\(2 * 30)"))
    }

    /// Byte-level check of what the upstream receives: exactly one header (28 bytes for
    /// IPv4 v2, the text line for v1) and then the client's bytes, untouched.
    @Test(arguments: ["v1", "v2"])
    func headerComesFirstThenTheClientBytesUntouched(version: String) throws {
        let capture = try TestBackend(.greetThenHalfClose([]))
        let listen = freePort()
        let forwarder = try ForwarderProcess(config: Self.proxyConfig(listen: listen, target: capture.port, version: version))
        let client = try TestSocket.connect("127.0.0.1", listen)
        let me = client.localAddress
        let payload = randomBytes(70_000, seed: 3)
        #expect(try client.receiveAll() == [])   // the capture backend half-closes at once
        try client.sendAll(payload)
        client.shutdownWrite()
        var waited = 0
        while capture.received.isEmpty && waited < 500 { usleep(20_000); waited += 1 }
        let bytes = try #require(capture.received.first)
        let expectedHeader: [UInt8]
        if version == "v1" {
            expectedHeader = Array("PROXY TCP4 127.0.0.1 127.0.0.1 \(me.port) \(listen)\r\n".utf8)
        } else {
            expectedHeader = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0x00, 0x0C,
                              127, 0, 0, 1, 127, 0, 0, 1, UInt8(me.port >> 8), UInt8(me.port & 0xFF), UInt8(listen >> 8), UInt8(listen & 0xFF)]
            #expect(expectedHeader.count == 28)
        }
        #expect(Array(bytes.prefix(expectedHeader.count)) == expectedHeader)
        #expect(Array(bytes.dropFirst(expectedHeader.count)) == payload)
        // Our own decoder agrees (secondary to the byte comparison above).
        if case let .complete(_, consumed) = ProxyHeader.decode(bytes) {
            #expect(consumed == expectedHeader.count)
        } else {
            Issue.record("decoder rejected what the forwarder sent")
        }
        #expect(forwarder.stop().exitCode == 0)
    }

    /// One rule mixing a PROXY-aware target (refused here) and a plain one: the plain
    /// target gets the client's bytes with no header in front.
    @Test func mixedRuleFailsOverToAPlainTargetWithoutAHeader() throws {
        let echo = try TestBackend(.echo)
        let listen = freePort(), dead = freePort()
        let forwarder = try ForwarderProcess(config: """
        [[rule]]
        name = "mixed"
        protocol = "tcp"
        listen_port = \(listen)
        targets = [
          { host = "127.0.0.1", port = \(dead), priority = 0, proxy_protocol = "v2" },
          { host = "127.0.0.1", port = \(echo.port), priority = 5 },
        ]
        """)
        let payload = randomBytes(10_000, seed: 9)
        let client = try TestSocket.connect("127.0.0.1", listen)
        try client.sendAll(payload)
        client.shutdownWrite()
        #expect(try client.receiveAll() == payload)
        #expect(forwarder.stop().stderr.contains("connect_failures=1"))
    }
}
