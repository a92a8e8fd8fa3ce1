import Foundation
import Glibc
import Testing
import TestSupport

/// What an operator or a hostile client can do to the running binary: stray signals,
/// more clients than `max_connections`, an fd limit too low for the listeners, and slow
/// readers on the splice path. Each asserted on exit codes, bytes and counters.
@Suite(.serialized) struct HostileOperationsTests {
    static func stoppedLine(_ stderr: String, rule: String) -> String {
        String(stderr.split(separator: "\n").first { $0.contains(" stopped ") && $0.contains("rule=\(rule)") } ?? "")
    }

    /// SIGUSR1 logs the counters at once; SIGUSR2, SIGALRM and the other stray signals
    /// are ignored. None of them ends a live connection.
    @Test func straySignalsKillNothing() throws {
        let echo = try TestBackend(.echo)
        let listen = freePort()
        let forwarder = try ForwarderProcess(config: tcpRuleConfig(listenPort: listen, target: "127.0.0.1:\(echo.port)"))
        let client = try TestSocket.connect("127.0.0.1", listen, receiveTimeoutSecs: 5)
        try client.sendAll([1])
        #expect(try client.receive(exactly: 1) == [1])
        for signal in [SIGUSR1, SIGUSR2, SIGALRM, SIGIO, SIGPROF, SIGVTALRM, SIGPWR] {
            #expect(kill(forwarder.pid, signal) == 0)
        }
        var statsLine = false
        for _ in 0..<200 where !statsLine {
            usleep(10_000)
            statsLine = forwarder.stderrText.contains(" INFO stats ")
        }
        #expect(statsLine, "SIGUSR1 logged no counters")
        #expect(forwarder.process.isRunning)
        try client.sendAll([2, 3])
        #expect(try client.receive(exactly: 2) == [2, 3], "the connection survived every signal")
        client.shutdownWrite()
        #expect(try client.receiveAll() == [])
        let result = forwarder.stop()
        #expect(result.exitCode == 0)
        #expect(Self.stoppedLine(result.stderr, rule: "fwd").contains("bytes_in=3 bytes_out=3"))
    }

    /// `max_connections = 2` with one worker: the third client is closed at once and
    /// counted as rejected; the first two keep working.
    @Test func clientsBeyondMaxConnectionsAreClosedAndCounted() throws {
        let echo = try TestBackend(.echo)
        let listen = freePort()
        let forwarder = try ForwarderProcess(config: tcpRuleConfig(listenPort: listen, target: "127.0.0.1:\(echo.port)",
                                                                   extra: "max_connections = 2"),
                                             arguments: ["--workers", "1"])
        let first = try TestSocket.connect("127.0.0.1", listen, receiveTimeoutSecs: 5)
        let second = try TestSocket.connect("127.0.0.1", listen, receiveTimeoutSecs: 5)
        for client in [first, second] {
            try client.sendAll([7])
            #expect(try client.receive(exactly: 1) == [7])
        }
        let third = try TestSocket.connect("127.0.0.1", listen, receiveTimeoutSecs: 5)
        switch third.receiveOnce() {
        case let .success(bytes): #expect(bytes == [], "the third client got bytes")
        case let .failure(error): #expect(error.errno == ECONNRESET)
        }
        // A flood of 50 more within a second is refused too, and logged at most once
        // a second (with the count suppressed), not once per client.
        for _ in 0..<50 { _ = try? TestSocket.connect("127.0.0.1", listen, receiveTimeoutSecs: 1).receiveOnce() }
        try first.sendAll([8])
        #expect(try first.receive(exactly: 1) == [8])
        let result = forwarder.stop()
        #expect(result.exitCode == 0)
        let line = Self.stoppedLine(result.stderr, rule: "fwd")
        #expect(line.contains("rejected=51"), "\(line)")
        #expect(line.contains("conns_total=2"), "\(line)")
        let limitLines = result.stderr.split(separator: "\n").filter { $0.contains("connection limit reached") }
        #expect((1...4).contains(limitLines.count), "\(limitLines.count) log lines for 51 rejected clients")
    }

    /// 300 listen ports × 2 families × 2 workers need 1,200 listen sockets: under an
    /// open-file limit of 1,024 both --check and start-up refuse the file with the
    /// numbers (exit 2); under 4,096 both accept it, and it runs and stops cleanly.
    @Test func listenersThatCannotFitTheFdLimitAreRefusedByCheckAndStartUpAlike() throws {
        let base: UInt16 = 21000
        let config = """
            [global]
            shutdown_drain_secs = 0
            [[rule]]
            name = "wide"
            protocol = "tcp"
            listen_ports = "\(base)-\(base + 299)"
            target = "127.0.0.1:\(base + 1000)-\(base + 1299)"
            """
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pu-fd-\(UUID().uuidString).toml").path
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let low = ["/usr/bin/prlimit", "--nofile=1024:1024", "--"]
        let check = try runBinary(["--check", "--config", path, "--workers", "2"], wrapper: low)
        #expect(check.exitCode == 2)
        #expect(check.stderr.contains("error[fd_limit_too_low]"))
        #expect(check.stderr.contains("300 listen ports × 2 address families × 2 workers need 1200 listen sockets"))
        #expect(check.stderr.contains("the limit is 1024"))
        let start = try runBinary(["--config", path, "--workers", "2"], timeoutSecs: 10, wrapper: low)
        #expect(start.exitCode == 2)
        #expect(start.stderr.contains("error[fd_limit_too_low]"))

        let high = ["/usr/bin/prlimit", "--nofile=4096:4096", "--"]
        let ok = try runBinary(["--check", "--config", path, "--workers", "2"], wrapper: high)
        #expect(ok.exitCode == 0 && ok.stdout == "ok\n", "\(ok.stderr)")
        guard (0..<300).allSatisfy({ canBind(port: base + UInt16($0)) }) else { return }   // outside the file's reach
        let forwarder = try ForwarderProcess(config: config, arguments: ["--workers", "2"], wrapper: high)
        #expect(forwarder.stop().exitCode == 0)
    }

    /// Splice under slow readers: every splice is non-blocking, so no io-wq thread waits
    /// for a slow peer, and the threads stay within the cap (4 per pool per ring).
    @Test func slowReadersOnSpliceHoldNoKernelThreads() throws {
        let flood = try TestBackend(.flood(bytes: 8 << 20, fill: HostileTraffic.downloadFill) { _ in nil })
        let echo = try TestBackend(.echo)
        let slowPort = freePort(), freshPort = freePort()
        let forwarder = try ForwarderProcess(config: tcpRulesConfig([("slow", slowPort, "127.0.0.1:\(flood.port)"), ("fresh", freshPort, "127.0.0.1:\(echo.port)")]), arguments: ["--relay", "splice", "--workers", "2"])
        let slow = try (0..<200).map { _ in try TestSocket.connect("127.0.0.1", slowPort, receiveBufferBytes: 4096) }
        defer { for client in slow { client.resetClose() } }
        sleep(2)
        let threads = forwarder.ioWorkerThreadCount
        #expect(threads <= 2 * 2 * 4, "\(threads) io-wq threads with 200 slow readers")
        let payload = HostileTraffic.tagged(1, size: 1024)
        let client = try TestSocket.connect("127.0.0.1", freshPort, receiveTimeoutSecs: 3)
        try client.sendAll(payload)
        client.shutdownWrite()
        #expect(try client.receiveAll() == payload)
        #expect(forwarder.stop().exitCode == 0)
    }
}
