import Foundation
import Testing
import TestSupport

/// Rule shapes from the config model reaching the data plane: port ranges mapped by
/// offset, target lists dialled in priority order, and what is refused for now.
@Suite(.serialized) struct RuleShapeTests {
    /// Three consecutive free ports (retries a few bases; bounded).
    static func freeRange(_ width: Int) -> UInt16 {
        for _ in 0..<50 {
            let base = UInt16.random(in: 20_000...29_000)
            let ok = (0..<width).allSatisfy { canBind(port: base + UInt16($0)) }
            if ok { return base }
        }
        return 0
    }

    @Test func listenRangeMapsByOffsetOntoTargetRange() throws {
        let listenBase = Self.freeRange(3), targetBase = Self.freeRange(3)
        try #require(listenBase != 0 && targetBase != 0)
        let backends = try (0..<3).map { try TestBackend(.greetThenHalfClose(Array("backend-\($0)".utf8)), port: targetBase + UInt16($0)) }
        let config = """
        [[rule]]
        name = "range"
        protocol = "tcp"
        listen_ports = "\(listenBase)-\(listenBase + 2)"
        target = "127.0.0.1:\(targetBase)-\(targetBase + 2)"
        """
        let forwarder = try ForwarderProcess(config: config)
        for offset in 0..<3 {
            let client = try TestSocket.connect("127.0.0.1", listenBase + UInt16(offset))
            #expect(try client.receiveAll() == Array("backend-\(offset)".utf8))
            client.shutdownWrite()
        }
        #expect(forwarder.stop().exitCode == 0)
        #expect(backends.map(\.accepted) == [1, 1, 1])
    }

    @Test func targetsAreDialledInPriorityOrder() throws {
        let preferred = try TestBackend(.greetThenHalfClose(Array("preferred".utf8)))
        let fallback = try TestBackend(.greetThenHalfClose(Array("fallback".utf8)))
        let listen = freePort()
        // File order says fallback first; priority says preferred first.
        let config = """
        [[rule]]
        name = "multi"
        protocol = "tcp"
        listen_port = \(listen)
        targets = [
          { host = "127.0.0.1", port = \(fallback.port), priority = 10 },
          { host = "127.0.0.1", port = \(preferred.port), priority = 0 },
        ]
        """
        let forwarder = try ForwarderProcess(config: config)
        let client = try TestSocket.connect("127.0.0.1", listen)
        #expect(try client.receiveAll() == Array("preferred".utf8))
        client.shutdownWrite()
        preferred.stop()   // now refused: the next connection must fall over
        let second = try TestSocket.connect("127.0.0.1", listen)
        #expect(try second.receiveAll() == Array("fallback".utf8))
        second.shutdownWrite()
        let result = forwarder.stop()
        #expect(result.stderr.contains("connect_failures=1"))
    }

}
