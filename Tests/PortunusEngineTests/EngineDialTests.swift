import Foundation
import Glibc
import Logging
import PortunusConfig
import Testing
import TestSupport
@testable import PortunusEngine

/// Starts an engine in this process on `toml` with `settings`, logging only criticals,
/// so that a test can read its counters directly.
func startEngine(_ toml: String, _ settings: EngineSettings) throws -> Engine {
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    let engine = try Engine(configuration: try ConfigLoader.parse(toml), settings: settings, logger: logger)
    try engine.start()
    return engine
}

/// The engine in this process, against real sockets on loopback, so its counters can
/// be read directly.
@Suite(.serialized) struct EngineDialTests {
    static func engine(_ toml: String, relay: RelayMode = .buffers, spliceAfterFullBuffers: Int = 16) throws -> Engine {
        try startEngine(toml, EngineSettings(workers: 1, relay: relay, connectionsPerWorker: 256, spliceAfterFullBuffers: spliceAfterFullBuffers))
    }

    static func config(listen: UInt16, targets: [String]) -> String {
        let list = targets.map { t -> String in
            let colon = t.lastIndex(of: ":")!
            return "{ host = \"\(t[..<colon])\", port = \(t[t.index(after: colon)...]) }"
        }.joined(separator: ", ")
        return """
        [global]
        shutdown_drain_secs = 1
        [[rule]]
        name = "dial"
        protocol = "tcp"
        listen_port = \(listen)
        targets = [ \(list) ]
        """
    }

    /// Waits (bounded) until `condition` holds on the engine's counters.
    static func eventually(_ engine: Engine, seconds: Double = 10, _ condition: (RuleCounters) -> Bool) -> RuleCounters {
        var waited = 0.0
        while waited < seconds {
            let c = engine.counters()[0]
            if condition(c) { return c }
            usleep(20_000); waited += 0.02
        }
        return engine.counters()[0]
    }

    @Test(arguments: RelayMode.allCases)
    func refusedBackendClosesTheClientAndIsCounted(relay: RelayMode) throws {
        let listen = freePort(), dead = freePort()
        let engine = try Self.engine(Self.config(listen: listen, targets: ["127.0.0.1:\(dead)"]), relay: relay)
        defer { engine.stop(); engine.wait() }
        let client = try TestSocket.connect("127.0.0.1", listen, receiveTimeoutSecs: 5)
        #expect(try client.receiveAll() == [])   // closed without a byte
        let c = Self.eventually(engine) { $0.connectionsActive == 0 && $0.connectFailures == 1 }
        #expect(c.connectFailures == 1)
        #expect(c.connectionsTotal == 1)
        #expect(c.connectionsActive == 0)
        #expect(c.bytesIn == 0 && c.bytesOut == 0)
    }

    @Test func refusedTargetFailsOverToTheNextInPriorityOrder() throws {
        let backend = try TestBackend(.echo)
        let listen = freePort(), dead = freePort()
        let engine = try Self.engine(Self.config(listen: listen, targets: ["127.0.0.1:\(dead)", "127.0.0.1:\(backend.port)"]))
        defer { engine.stop(); engine.wait() }
        let client = try TestSocket.connect("127.0.0.1", listen)
        let payload = randomBytes(10_000)
        try client.sendAll(payload)
        client.shutdownWrite()
        #expect(try client.receiveAll() == payload)
        let c = Self.eventually(engine) { $0.connectionsActive == 0 }
        #expect(c.connectFailures == 1)
        #expect(c.bytesIn == 10_000 && c.bytesOut == 10_000)
        #expect(backend.accepted == 1)
    }

    /// A backend whose accept queue is full drops new SYNs, so the connect hangs until
    /// the 3 s link timeout cancels it.
    @Test func blackholedBackendHitsTheConnectTimeout() throws {
        let blackhole = try TestBackend(.neverAccept)
        // A backlog-0 listener's accept queue holds one connection; with it taken, the
        // kernel drops further SYNs. (A second blocking connect here would itself hang.)
        let filler = try TestSocket.connect("127.0.0.1", blackhole.port)
        defer { filler.close() }
        let listen = freePort()
        let engine = try Self.engine(Self.config(listen: listen, targets: ["127.0.0.1:\(blackhole.port)"]))
        defer { engine.stop(); engine.wait() }
        var start = timespec(); clock_gettime(CLOCK_MONOTONIC, &start)
        let client = try TestSocket.connect("127.0.0.1", listen, receiveTimeoutSecs: 10)
        #expect(try client.receiveAll() == [])
        var end = timespec(); clock_gettime(CLOCK_MONOTONIC, &end)
        let elapsed = Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) / 1e9
        // Not a timing assertion on our speed: proof that the close came from the
        // 3 s time box and not from a refusal.
        #expect(elapsed >= 2.5)
        let c = Self.eventually(engine) { $0.connectionsActive == 0 }
        #expect(c.connectFailures == 1)
    }

    @Test func stopWithOpenConnectionsEndsAfterTheDrainBudget() throws {
        let backend = try TestBackend(.echo)
        let listen = freePort()
        let engine = try Self.engine(Self.config(listen: listen, targets: ["127.0.0.1:\(backend.port)"]))
        let client = try TestSocket.connect("127.0.0.1", listen)
        try client.sendAll([1, 2, 3])
        #expect(try client.receive(exactly: 3) == [1, 2, 3])
        engine.stop()
        engine.wait()   // returns only because the 1 s drain budget cuts the connection
        #expect(engine.counters()[0].connectionsActive == 0)
        if case let .failure(error) = client.receiveOnce() { #expect(error.errno == ECONNRESET) }
    }

    /// Auto relay: a half whose recvs fill whole buffers moves to splice mid-stream, with
    /// no byte lost or reordered across the switch. The client queues 8 MiB before the
    /// engine's first recv, so that recv fills its 64 KiB buffer; the threshold is 1.
    @Test func autoRelayMovesAStreamingHalfToSpliceMidStream() throws {
        let backend = try TestBackend(.echo)
        let listen = freePort()
        let engine = try Self.engine(Self.config(listen: listen, targets: ["127.0.0.1:\(backend.port)"]), relay: .auto, spliceAfterFullBuffers: 1)
        defer { engine.stop(); engine.wait() }
        let client = try TestSocket.connect("127.0.0.1", listen, receiveTimeoutSecs: 30)
        let payload = randomBytes(8 << 20, seed: 5)
        let sender = Thread { try? client.sendAll(payload); client.shutdownWrite() }
        sender.start()
        #expect(try client.receiveAll() == payload)
        let c = Self.eventually(engine) { $0.connectionsActive == 0 }
        #expect(c.splicedHalves >= 1)
        #expect(c.bytesIn == UInt64(payload.count) && c.bytesOut == UInt64(payload.count))
    }
}
