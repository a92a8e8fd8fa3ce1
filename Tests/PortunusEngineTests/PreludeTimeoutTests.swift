import Foundation
import Glibc
import Logging
import PortunusConfig
import PortunusRing
import Testing
import TestSupport
@_spi(Simulation) @testable import PortunusEngine

/// The PROXY prelude's time box, proven at engine level.
///
/// On loopback a 28-byte send to a freshly connected socket completes at once (it only
/// needs room in the local send buffer), so a stuck upstream cannot be built from the
/// outside. Instead the test hands the worker an upstream socket whose send buffer it
/// has already filled against a peer that never reads: the header's send then waits
/// for POLLOUT that never comes, the 200 ms link timeout cancels it, and the worker
/// must reset that upstream, count the failure and dial the next target (a plain echo
/// backend), after which the client's bytes flow through untouched.
@Suite struct PreludeTimeoutTests {
    @Test func stuckPreludeTimesOutAndFailsOverToTheNextTarget() throws {
        let stuck = try TestBackend(.neverAccept)   // completes handshakes, never reads
        let echo = try TestBackend(.echo)
        let config = try ConfigLoader.parse("""
        [[rule]]
        name = "pp"
        protocol = "tcp"
        listen_port = 1
        targets = [
          { host = "127.0.0.1", port = \(stuck.port), priority = 0, proxy_protocol = "v2" },
          { host = "127.0.0.1", port = \(echo.port), priority = 1 },
        ]
        """)
        let plan = ForwardingPlan.compile(config)
        let settings = EngineSettings(workers: 1, relay: .buffers, preludeTimeoutMs: 200)
        let counters = WorkerCounters(rules: 1)
        let wake = try EventFD.make()
        defer { Sockets.close(wake) }
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let setup = WorkerSetup(index: 0, plan: plan, settings: settings, connections: 8, listenerFDs: [], listenerPlanIndex: [],
                                wakeFD: wake, counters: counters, logger: logger)

        // The client's side: a real accepted TCP socket, so the worker can read the
        // client's address for the header.
        let frontPort = freePort()
        let front = try Sockets.listener(.ipv4, port: frontPort, reusePort: false, backlog: 4)
        defer { Sockets.close(front) }
        let client = try TestSocket.connect("127.0.0.1", frontPort)
        let clientFD = accept(front, nil, nil)
        try #require(clientFD >= 0)

        // The stuck upstream: connected, then filled until the kernel refuses more.
        let upstream = try TestSocket.connect("127.0.0.1", stuck.port)
        let upstreamFD = dup(upstream.fd)
        upstream.close()
        let flags = fcntl(upstreamFD, F_GETFL)
        _ = fcntl(upstreamFD, F_SETFL, flags | O_NONBLOCK)
        let filler = [UInt8](repeating: 0x55, count: 65536)
        var filled = 0
        while true {
            let n = send(upstreamFD, filler, filler.count, Int32(MSG_NOSIGNAL))
            if n <= 0 { break }
            filled += n
        }
        #expect(errno == EAGAIN && filled > 0)
        _ = fcntl(upstreamFD, F_SETFL, flags)

        // The ring must be created and driven by one thread (SINGLE_ISSUER).
        let done = NSCondition()
        nonisolated(unsafe) var setupError: Error?
        let thread = Thread {
            do {
                let worker = try Worker(setup, io: KernelIO(settings: settings) { _, _ in }, drainMs: 0)
                worker.arm()
                let slot = worker.slab.acquire()!
                worker.slab[slot].client = clientFD
                worker.slab[slot].upstream = upstreamFD
                worker.slab[slot].state = .dialling(endpoint: 0, address: 0)
                counters.add(.connectionsActive, rule: 0, 1)
                worker.onConnect(slot, 0)   // the connect "succeeded": the prelude goes next
                while !worker.isFinished { worker.step() }
                worker.finish()
            } catch {
                setupError = error
            }
            done.lock(); done.signal(); done.unlock()
        }
        thread.start()

        let payload = randomBytes(4096, seed: 42)
        try client.sendAll(payload)
        #expect(try client.receive(exactly: payload.count) == payload)   // echoed, no header in it
        #expect(counters.load(.preludeFailures, rule: 0) == 1)
        #expect(counters.load(.connectFailures, rule: 0) == 1)
        #expect(echo.accepted == 1)

        done.lock()
        EventFD.signal(wake)
        #expect(done.wait(until: Date().addingTimeInterval(10)))
        done.unlock()
        #expect(setupError == nil)
    }
}
