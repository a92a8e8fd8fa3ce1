import Foundation
import PortunusStats
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Logs in Portunus's JSON shape (PORTUNUS_COMPAT.md): every line an object with
/// `timestamp`, `level`, `fields` (with `event`) and `target`, numbers as numbers, and
/// the event names operators' queries key on; tracing-style `log_level` filters.
@Suite struct LogShapeTests {
    static func lines(_ stderr: String) throws -> [JSON] {
        try stderr.split(separator: "\n").map { try JSON.parse(String($0)) }
    }

    static func events(_ lines: [JSON]) -> [String] {
        lines.compactMap { $0["fields"]?["event"]?.stringValue }
    }

    @Test func everyLineIsPortunusShapedJSONAndTheEventsAreNamedAsPortunusNamesThem() throws {
        let dead = freePort()   // nobody listens: every dial is refused
        let udpBackend = try UDPEchoBackend()
        let tcpPort = freePort(), udpPort = freeUDPListenPort()
        let config = """
        [global]
        shutdown_drain_secs = 0
        [[rule]]
        name = "web"
        listen_port = \(tcpPort)
        target = "127.0.0.1:\(dead)"
        [[rule]]
        name = "dns"
        protocol = "udp"
        listen_port = \(udpPort)
        target = "127.0.0.1:\(udpBackend.port)"
        """
        let forwarder = try ForwarderProcess(config: config, arguments: ["--log-format", "json", "--log-level", "info,portunus::rule=debug"])
        // Three refused dials: three dial failures, connection errors, and the target
        // turning Failed.
        for _ in 0..<3 {
            let client = try TestSocket.connect("127.0.0.1", tcpPort, receiveTimeoutSecs: 5)
            _ = try? client.receiveAll()
        }
        let udp = try UDPSocket()
        try udp.send([1, 2, 3], to: udpPort)
        #expect(udp.receive()?.bytes == [1, 2, 3])
        let result = forwarder.stop()
        #expect(result.exitCode == 0)
        let lines = try Self.lines(result.stderr)
        #expect(lines.count >= 10)
        for line in lines {
            guard case let .object(members) = line else { Issue.record("not an object: \(line.compact)"); continue }
            #expect(members.map(\.0) == ["timestamp", "level", "fields", "target"], "\(line.compact)")
            #expect(["ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(line["level"]?.stringValue ?? ""))
            #expect(line["timestamp"]?.stringValue?.hasSuffix("Z") == true)
            #expect(line["fields"]?["event"]?.stringValue?.isEmpty == false)
            #expect(line["target"]?.stringValue?.hasPrefix("portunus") == true)
        }
        let events = Self.events(lines)
        for event in ["standalone.rlimit_nofile", "standalone.started", "rule.activated", "stats_socket_listening", "standalone.stats",
                      "rule.target.dial_failed", "rule.conn_error", "rule.target.health_changed", "shutdown.signal", "standalone.stopped",
                      "rule.conn_closed", "rule.udp_flow_opened"] {
            #expect(events.contains(event), "no \(event) in \(Set(events).sorted())")
        }
        // Portunus's reporter at start-up: one line per rule, its names, numbers as numbers.
        let report = lines.filter { $0["fields"]?["event"]?.stringValue == "standalone.stats" }
        #expect(report.count == 2)
        let web = try #require(report.first { $0["fields"]?["rule_name"]?.stringValue == "web" })
        #expect(web["fields"]?["rule"] == .number(String(BLAKE3.ruleID("web"))))
        for key in ["in_bytes", "out_bytes", "active_conns", "datagrams_in", "datagrams_out", "active_flows"] {
            #expect(web["fields"]?[key]?.uint64Value != nil, "standalone.stats \(key) is a number")
        }
        #expect(web["target"]?.stringValue == "portunus::standalone")
        let health = try #require(lines.first { $0["fields"]?["event"]?.stringValue == "rule.target.health_changed" })
        #expect(health["level"]?.stringValue == "WARN" && health["target"]?.stringValue == "portunus::rule")
        #expect(health["fields"]?["rule"]?.stringValue == "web" && health["fields"]?["to"]?.stringValue == "failed")
        #expect(events.filter { $0 == "rule.conn_closed" }.count == 3, "one per connection")
        let stopped = try #require(lines.first { $0["fields"]?["event"]?.stringValue == "standalone.stopped" && $0["fields"]?["rule"]?.stringValue == "dns" })
        #expect(stopped["fields"]?["datagrams_in"] == .number("1") && stopped["fields"]?["bytes_out"] == .number("3"))
        // An independent parser agrees that each line is JSON.
        #expect(try runFiltering(["/usr/bin/python3", "-c", "import json,sys\nfor l in sys.stdin: json.loads(l)"], input: Array(result.stderr.utf8)).exitCode == 0)
    }

    /// `warn,portunus::rule=debug`: rule events down to debug, everything else from warn.
    @Test func aTracingFilterSetsTheLevelPerTarget() throws {
        let backend = try TestBackend(.echo)
        let port = freePort()
        let config = tcpRuleConfig(listenPort: port, target: "127.0.0.1:\(backend.port)")
        // standalone=info so the start-up line the test waits for is logged.
        let forwarder = try ForwarderProcess(config: config, arguments: ["--log-format", "json", "--log-level", "warn,portunus::rule=debug,portunus::standalone=info"])
        let result = forwarder.stop()
        let events = Self.events(try Self.lines(result.stderr))
        #expect(events.contains("rule.activated"), "rule at debug: its info lines are in")
        #expect(events.contains("standalone.started"))
        #expect(!events.contains("stats_socket_listening"), "portunus::stats is at warn")
        #expect(!events.contains("shutdown.signal"), "portunus::shutdown is at warn")
        #expect(!events.contains("rule.conn_closed"), "no connection was made")
    }

    /// A `log_level` Portunus would run with a warning: `--check` says so and passes,
    /// and the forwarder runs at `warn`.
    @Test func anInvalidLogLevelIsACheckWarningAndRunsAtWarn() throws {
        let backend = try TestBackend(.echo)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("pu-log-\(UUID().uuidString).toml")
        try tcpRuleConfig(listenPort: freePort(), target: "127.0.0.1:\(backend.port)", extra: "log_level = \"portunus=chatty\"")
            .write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let check = try runBinary(["--config", file.path, "--check"])
        #expect(check.exitCode == 0)
        #expect(check.stdout == "ok\n")
        #expect(check.stderr.contains("warning[validation.log_level_invalid]: global.log_level: \"portunus=chatty\""))
    }
}
