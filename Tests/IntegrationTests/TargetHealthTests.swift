import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Target health through the real binary: a blackholed first target costs at most three
/// connect timeouts, then clients go straight to the second; when it comes back, two
/// successes make it Healthy again.
@Suite struct TargetHealthTests {
    @Test func aBlackholedTargetIsSkippedAfterThreeTimeoutsAndRecoversAfterTwoSuccesses() throws {
        // A listener that never accepts, its one-entry accept queue filled: further SYNs
        // are dropped and a connect hangs until its timeout.
        let hole = try TestBackend(.neverAccept)
        let filler = try TestSocket.connect("127.0.0.1", hole.port)
        defer { filler.close() }
        let second = try TestBackend(.greetThenHalfClose(Array("second".utf8)))
        let listen = freePort()
        let config = """
        [global]
        shutdown_drain_secs = 0
        [[rule]]
        name = "pair"
        listen_port = \(listen)
        targets = [ { host = "127.0.0.1", port = \(hole.port), priority = 0 },
                    { host = "127.0.0.1", port = \(second.port), priority = 1 } ]
        """
        let forwarder = try ForwarderProcess(config: config)

        var waits: [Double] = []
        for _ in 0..<4 {
            let start = Date()
            #expect(try DNSTargetTests.greeting(listen) == "second")
            waits.append(Date().timeIntervalSince(start))
        }
        // Three connect timeouts (3 s each), then straight to the second target.
        #expect(waits.prefix(3).allSatisfy { $0 >= 2.9 && $0 < 6 }, "\(waits)")
        #expect(waits[3] < 1.0, "\(waits)")
        let failed = forwarder.stderrText.split(separator: "\n").filter { $0.contains("rule.target.health_changed") }
        #expect(failed.count == 1)
        #expect(failed.first.map { $0.contains("from=healthy") && $0.contains("to=failed") && $0.contains("target=127.0.0.1:\(hole.port)") } == true)

        // The first target comes back; the second goes away. A Failed target is still
        // tried after the Healthy ones, so its recovery is seen.
        let port = hole.port
        hole.stop()
        filler.close()
        let first = try TestBackend(.greetThenHalfClose(Array("first".utf8)), port: port)
        second.stop()
        #expect(try DNSTargetTests.greeting(listen) == "first")
        #expect(try DNSTargetTests.greeting(listen) == "first")
        let changes = forwarder.stderrText.split(separator: "\n").filter { $0.contains("rule.target.health_changed") }
        #expect(changes.count == 2)
        #expect(changes.last.map { $0.contains("from=failed") && $0.contains("to=healthy") } == true)
        // Healthy again, and dialled first: no attempt on the second any more.
        #expect(try DNSTargetTests.greeting(listen) == "first")

        let result = forwarder.stop()
        #expect(first.accepted == 3)
        #expect(DNSTargetTests.stoppedCounter(result.stderr, rule: "pair", "target_failovers_total") == 1)
        // Three timeouts on the first target, two refusals by the stopped second.
        #expect(DNSTargetTests.stoppedCounter(result.stderr, rule: "pair", "connect_failures") == 5)
    }
}
