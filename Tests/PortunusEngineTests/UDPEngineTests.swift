import Foundation
import Testing
import TestSupport
@testable import PortunusEngine

/// UDP through the engine in this process, where its buffers can be made small: a
/// datagram longer than a buffer is dropped and counted, never forwarded cut short.
@Suite struct UDPEngineTests {
    /// One worker with a UDP rule to a fresh echo backend, its datagram ring as given.
    static func udpEngine(buffers: Int, bufferSize: Int? = nil) throws -> (Engine, UDPEchoBackend, listen: UInt16) {
        let backend = try UDPEchoBackend()
        let listen = freeUDPListenPort()
        var settings = EngineSettings(workers: 1, connectionsPerWorker: 64)
        settings.datagramBufferCount = buffers
        if let bufferSize { settings.datagramBufferSize = bufferSize }
        let engine = try startEngine("""
            [[rule]]
            name = "udp"
            protocol = "udp"
            listen_port = \(listen)
            target = "127.0.0.1:\(backend.port)"
            """, settings)
        return (engine, backend, listen)
    }

    @Test func aDatagramLongerThanItsBufferIsCountedNotTruncated() throws {
        let (engine, backend, listen) = try Self.udpEngine(buffers: 16, bufferSize: 2048)
        defer { engine.stop(); engine.wait() }
        let client = try UDPSocket(receiveTimeoutMs: 500)
        try client.send([UInt8](repeating: 7, count: 3000), to: listen)
        #expect(client.receive() == nil)
        try client.send([UInt8](repeating: 8, count: 100), to: listen)
        #expect(client.receive()?.bytes == [UInt8](repeating: 8, count: 100))
        // A send's completion may be reaped just after its datagram arrived.
        let counters = Self.settled(engine) { $0.datagramsOut == 1 }
        #expect(counters.emsgsize == 1)
        #expect(counters.datagramsIn == 1 && counters.datagramsOut == 1 && counters.bytesIn == 100)
        #expect(backend.sources.count == 1, "the long datagram never reached the backend")
    }

    /// Two datagram buffers for forty clients: recvs that find no buffer (ENOBUFS) on
    /// the listen socket and on flows' upstream sockets are armed again, and every
    /// client gets its own reply.
    @Test func flowsThatRanOutOfBuffersAreArmedAgain() throws {
        let (engine, _, listen) = try Self.udpEngine(buffers: 2)
        defer { engine.stop(); engine.wait() }
        let clients = try (0..<40).map { _ in try UDPSocket(receiveTimeoutMs: 3000) }
        for round in 0..<3 {
            for (i, client) in clients.enumerated() { try client.send(Array("\(round)-\(i)".utf8), to: listen) }
            for (i, client) in clients.enumerated() {
                let start = Date()
                let got = client.receive()
                #expect(got?.bytes == Array("\(round)-\(i)".utf8), "errno \(client.lastErrno) after \(Date().timeIntervalSince(start)) s")
            }
        }
        #expect(Self.settled(engine) { $0.datagramsOut == 120 }.datagramsOut == 120)
    }

    /// The rule's counters once `done` holds (at most 2 s), or as they are then.
    static func settled(_ engine: Engine, _ done: (RuleCounters) -> Bool) -> RuleCounters {
        let deadline = Date().addingTimeInterval(2)
        while !done(engine.counters()[0]) && Date() < deadline { usleep(5_000) }
        return engine.counters()[0]
    }
}
