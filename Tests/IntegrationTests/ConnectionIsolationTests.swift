import Foundation
import Glibc
import Testing
import TestSupport

/// No byte of one connection may ever reach another (README, "Security notes"). A storm
/// of streaming connections that clients and backends reset at random points (SO_LINGER
/// 0) leaves the forwarder's pooled pipes empty, and fresh connections afterwards, each
/// with its own tagged payload, get back exactly their own bytes, on every relay path.
/// Every random choice comes from a fixed seed, so a failure replays.
@Suite(.serialized) struct ConnectionIsolationTests {
    /// Two rules: "storm" to a backend that streams and resets, "fresh" to an echo backend.
    struct Setup {
        let flood: TestBackend
        let echo: TestBackend
        let stormPort: UInt16
        let freshPort: UInt16
        let forwarder: ForwarderProcess
        /// Sockets the forwarder holds with no connection open (its listeners).
        let idleSockets: Int

        init(relay: String) throws {
            flood = try HostileTraffic.floodBackend()
            echo = try TestBackend(.echo)
            stormPort = freePort()
            freshPort = freePort()
            forwarder = try ForwarderProcess(config: tcpRulesConfig([("storm", stormPort, "127.0.0.1:\(flood.port)"), ("fresh", freshPort, "127.0.0.1:\(echo.port)")],
                                                                drainSecs: 2), arguments: ["--relay", relay, "--workers", "2"])
            idleSockets = socketCount(pid: forwarder.pid)
        }

        /// Waits (bounded) until the forwarder holds no connection sockets.
        func waitUntilIdle(seconds: Double = 20) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if socketCount(pid: forwarder.pid) == idleSockets { return true }
                usleep(20_000)
            }
            return false
        }
    }

    /// Pipes the forwarder keeps that are not empty, by pipe inode.
    static func nonEmptyPipes(_ setup: Setup) -> [String: Int] {
        queuedBytesInPipes(pid: setup.forwarder.pid).filter { $0.value != 0 }
    }

    /// The storm, then byte-exact fresh connections on the second rule: small ones
    /// (one pipe each on the splice path, taken from the pool the storm left) and large
    /// ones (which move to splice on the auto path).
    @Test(arguments: ["buffers", "splice", "auto"])
    func resetStormLeavesNoByteForTheNextConnection(relay: String) throws {
        let setup = try Setup(relay: relay)
        for round in 0..<3 {
            HostileTraffic.storm(port: setup.stormPort, connections: 24, concurrency: 24, seed: UInt64(round + 1))
        }
        #expect(setup.waitUntilIdle(), "the forwarder still holds connection sockets after the storm")
        #expect(Self.nonEmptyPipes(setup) == [:], "pooled pipes still hold bytes after the storm")

        var mismatches: [String] = []
        for id in 0..<20 {
            if let problem = HostileTraffic.echoMismatch(port: setup.freshPort, HostileTraffic.tagged(id, size: 1500)) { mismatches.append("#\(id): \(problem)") }
        }
        for id in 100..<106 {
            if let problem = HostileTraffic.echoMismatch(port: setup.freshPort, HostileTraffic.tagged(id, size: 4 << 20)) { mismatches.append("#\(id): \(problem)") }
        }
        #expect(mismatches == [], "fresh connections received bytes that were not their own")
        let result = setup.forwarder.stop()
        #expect(result.exitCode == 0, "\(result.stderr.suffix(2000))")
        let total = 20 * 1500 + 6 * (4 << 20)
        let fresh = result.stderr.split(separator: "\n").first { $0.contains(" stopped ") && $0.contains("rule=fresh") } ?? ""
        #expect(fresh.contains("bytes_in=\(total) bytes_out=\(total)"), "\(fresh)")
        if relay == "splice" {
            // Every storm half streams through a pipe here, so some were cut with bytes in
            // theirs: proof that the storm reached the case this test is about.
            let storm = result.stderr.split(separator: "\n").first { $0.contains(" stopped ") && $0.contains("rule=storm") } ?? ""
            #expect(!storm.contains("pipes_discarded=0 "), "\(storm)")
        }
    }

    /// Churn: tagged echo connections of random sizes run alongside the reset storm, on
    /// the same workers and pools. Every echo must come back byte-exact.
    @Test(arguments: ["buffers", "splice", "auto"])
    func churnAlongsideResetsStaysByteExact(relay: String) throws {
        let setup = try Setup(relay: relay)
        let stormDone = DispatchGroup()
        stormDone.enter()
        Thread {
            HostileTraffic.storm(port: setup.stormPort, connections: 48, concurrency: 12, seed: 99)
            stormDone.leave()
        }.start()
        let problems = Tally()
        let group = DispatchGroup()
        for worker in 0..<4 {
            group.enter()
            Thread {
                var random = SeededRandom(seed: UInt64(worker) + 17)
                for n in 0..<60 {
                    let id = worker * 1000 + n
                    // Mostly short exchanges, one in eight a bulk one that can move to splice.
                    let size = n % 8 == 7 ? random.next(in: (1 << 20)...(3 << 20)) : random.next(in: 1...(48 << 10))
                    let problem = HostileTraffic.echoMismatch(port: setup.freshPort, HostileTraffic.tagged(id, size: size))
                    problems.record(problem.map { "#\(id): \($0)" })
                }
                group.leave()
            }.start()
        }
        group.wait()
        stormDone.wait()
        #expect(problems.count == 240)
        #expect(problems.failures == [], "echo connections received bytes that were not their own")
        #expect(setup.waitUntilIdle(), "the forwarder still holds connection sockets after the churn")
        #expect(Self.nonEmptyPipes(setup) == [:], "pooled pipes still hold bytes after the churn")
        let result = setup.forwarder.stop()
        #expect(result.exitCode == 0, "\(result.stderr.suffix(2000))")
    }
}

