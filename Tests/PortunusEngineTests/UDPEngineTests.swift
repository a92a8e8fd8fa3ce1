import Foundation
import Testing
import TestSupport
@testable import PortunusEngine

/// UDP through the engine in this process, where its buffers can be made small: a
/// datagram longer than a buffer is dropped and counted, never forwarded cut short.
@Suite struct UDPEngineTests {
    @Test func aDatagramLongerThanItsBufferIsCountedNotTruncated() throws {
        let backend = try UDPEchoBackend()
        let listen = freeUDPListenPort()
        var settings = EngineSettings(workers: 1, connectionsPerWorker: 64)
        settings.datagramBufferCount = 16
        settings.datagramBufferSize = 2048
        let engine = try startEngine("""
            [[rule]]
            name = "small"
            protocol = "udp"
            listen_port = \(listen)
            target = "127.0.0.1:\(backend.port)"
            """, settings)
        defer { engine.stop(); engine.wait() }
        let client = try UDPSocket(receiveTimeoutMs: 500)
        try client.send([UInt8](repeating: 7, count: 3000), to: listen)
        #expect(client.receive() == nil)
        try client.send([UInt8](repeating: 8, count: 100), to: listen)
        #expect(client.receive()?.bytes == [UInt8](repeating: 8, count: 100))
        let counters = engine.counters()[0]
        #expect(counters.emsgsize == 1)
        #expect(counters.datagramsIn == 1 && counters.datagramsOut == 1 && counters.bytesIn == 100)
        #expect(backend.sources.count == 1, "the long datagram never reached the backend")
    }
}
