import Foundation
import Glibc
import Logging
import PortunusConfig
import Testing
import TestSupport
@testable import PortunusEngine

/// Clients that download and never read must not starve anyone else (README, "Limits
/// and resources"). Three times as many slow readers as the worker has buffers, and a
/// pipe budget far below their number, then fresh round trips on another rule: each
/// must come back, byte-exact, well within the connect timeout. Before the fix every
/// buffer sat in a send to a slow reader and the fresh round trips never came back.
@Suite(.serialized) struct SlowReaderTests {
    static let bufferCount = 64

    @Test(arguments: RelayMode.allCases)
    func slowReadersDoNotStarveOtherConnections(relay: RelayMode) throws {
        let flood = try TestBackend(.flood(bytes: 8 << 20, fill: HostileTraffic.downloadFill) { _ in nil })
        let echo = try TestBackend(.echo)
        let slowPort = freePort(), freshPort = freePort()
        let settings = EngineSettings(workers: 1, relay: relay, connectionsPerWorker: 1024, bufferCount: Self.bufferCount,
                                      spliceAfterFullBuffers: 2, pipeLimit: 16)
        let engine = try startEngine(tcpRulesConfig([("slow", slowPort, "127.0.0.1:\(flood.port)"), ("fresh", freshPort, "127.0.0.1:\(echo.port)")]), settings)
        defer { engine.stop(); engine.wait() }

        let slow = try (0..<(3 * Self.bufferCount)).map { _ in
            try TestSocket.connect("127.0.0.1", slowPort, receiveBufferBytes: 4096)
        }
        defer { for client in slow { client.resetClose() } }
        // The stall is in place once the bytes relayed to the slow readers have stopped
        // growing for a second (at most 30 s: the backends start streaming one thread
        // per connection, which takes a while on a loaded machine).
        var last: UInt64 = 0, steady = 0
        for _ in 0..<300 where steady < 10 {
            usleep(100_000)
            let now = engine.counters()[0].bytesOut
            steady = now == last && now > 0 ? steady + 1 : 0
            last = now
        }
        #expect(steady >= 10, "the slow readers' downloads never came to a stop")

        for id in 0..<5 {
            let payload = HostileTraffic.tagged(id, size: 1024)
            let client = try TestSocket.connect("127.0.0.1", freshPort, receiveTimeoutSecs: 3)
            try client.sendAll(payload)
            client.shutdownWrite()
            #expect(try client.receiveAll() == payload, "fresh round trip \(id) with \(slow.count) slow readers")
        }
        let c = engine.counters()
        #expect(c[0].connectionsActive == UInt64(slow.count), "every slow reader is still connected")
        #expect(c[1].bytesIn == 5 * 1024 && c[1].bytesOut == 5 * 1024)
        if relay == .buffers {
            #expect(c[0].spilledSends > 0, "no send was spilled: the slow readers never pressed on the buffers")
        }
    }
}
