import Foundation
import Glibc
import Logging
import PortunusConfig
import Testing
import TestSupport
@testable import PortunusEngine

/// `idle_timeout_secs`: a connection with no byte either way for that long is closed by
/// the worker's sweep and counted; one that keeps talking is not.
@Suite(.serialized) struct IdleTimeoutTests {
    @Test func idleConnectionIsClosedAndABusyOneIsNot() throws {
        let echo = try TestBackend(.echo)
        let listen = freePort()
        let engine = try startEngine("""
            [global]
            shutdown_drain_secs = 0
            [[rule]]
            name = "idle"
            protocol = "tcp"
            listen_port = \(listen)
            target = "127.0.0.1:\(echo.port)"
            idle_timeout_secs = 1
            """, EngineSettings(workers: 1, connectionsPerWorker: 16))
        defer { engine.stop(); engine.wait() }

        let idle = try TestSocket.connect("127.0.0.1", listen, receiveTimeoutSecs: 5)
        let busy = try TestSocket.connect("127.0.0.1", listen, receiveTimeoutSecs: 5)
        try idle.sendAll([1, 2, 3])
        #expect(try idle.receive(exactly: 3) == [1, 2, 3])
        var start = timespec(); clock_gettime(CLOCK_MONOTONIC, &start)
        // The busy one talks every 300 ms for 2.4 s: never idle for a whole second.
        for i in 0..<8 {
            try busy.sendAll([UInt8(i)])
            #expect(try busy.receive(exactly: 1) == [UInt8(i)])
            usleep(300_000)
        }
        // By now (2.4 s) the idle one was closed: its next read is EOF, with no byte.
        #expect(try idle.receiveAll() == [])
        var end = timespec(); clock_gettime(CLOCK_MONOTONIC, &end)
        #expect(end.tv_sec - start.tv_sec < 5)
        try busy.sendAll([42])
        #expect(try busy.receive(exactly: 1) == [42], "the busy connection is still open")
        let c = engine.counters()[0]
        #expect(c.idleClosed == 1)
        #expect(c.connectionsActive == 1)
    }
}
