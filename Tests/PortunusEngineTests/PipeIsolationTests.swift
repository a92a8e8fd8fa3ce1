import Foundation
import Glibc
import Logging
import PortunusConfig
import Testing
import TestSupport
@testable import PortunusEngine

/// The pipe pool of one worker, shared by two rules, under connections cut mid-splice.
/// The engine's own gate checks every pipe it pools (account and FIONREAD both zero;
/// a debug build traps otherwise); this test adds the outside view: fresh connections
/// afterwards get back exactly their own bytes. On the auto path the threshold is one
/// full buffer, so storm halves move to splice at once.
@Suite(.serialized) struct PipeIsolationTests {
    @Test(arguments: [RelayMode.splice, .auto])
    func connectionsCutMidSpliceLeaveNothingForTheNext(relay: RelayMode) throws {
        let flood = try HostileTraffic.floodBackend()
        let echo = try TestBackend(.echo)
        let stormPort = freePort(), freshPort = freePort()
        let engine = try startEngine(tcpRulesConfig([("storm", stormPort, "127.0.0.1:\(flood.port)"), ("fresh", freshPort, "127.0.0.1:\(echo.port)")], drainSecs: 1),
                                     EngineSettings(workers: 1, relay: relay, connectionsPerWorker: 256, spliceAfterFullBuffers: 1))
        defer { engine.stop(); engine.wait() }

        HostileTraffic.storm(port: stormPort, connections: 48, concurrency: 16, seed: 7)
        var waited = 0
        while engine.counters()[0].connectionsActive > 0 && waited < 1000 { usleep(10_000); waited += 1 }
        let storm = engine.counters()[0]
        #expect(storm.connectionsActive == 0 && storm.connectionsTotal == 48)
        if relay == .auto { #expect(storm.splicedHalves > 0, "no storm half moved to splice: the test would prove nothing") }
        #expect(storm.pipesDiscarded > 0, "no connection was cut with bytes in its pipe: the test would prove nothing")

        var mismatches: [String] = []
        for id in 0..<24 {
            let size = id % 6 == 5 ? 2 << 20 : 1500
            if let problem = HostileTraffic.echoMismatch(port: freshPort, HostileTraffic.tagged(id, size: size)) {
                mismatches.append("#\(id): \(problem)")
            }
        }
        #expect(mismatches == [], "fresh connections received bytes that were not their own")
    }
}
