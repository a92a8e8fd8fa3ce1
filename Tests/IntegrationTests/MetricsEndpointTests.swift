import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The Prometheus endpoint through the real binary: exact counts after real traffic,
/// the text checked by Prometheus's own `promtool` and scraped by a real Prometheus
/// server, the command-line option and the config key validated, a busy port survived.
@Suite(.serialized) struct MetricsEndpointTests {
    static let promtool = "/usr/bin/promtool"

    static func config(tcpListen: UInt16, tcpTarget: UInt16, udpListen: UInt16, udpTarget: UInt16, metrics: String?) -> String {
        """
        [global]
        shutdown_drain_secs = 0
        \(metrics.map { "[metrics]\nlisten = \"\($0)\"" } ?? "")
        [[rule]]
        name = "web"
        listen_port = \(tcpListen)
        targets = [{ host = "127.0.0.1", port = \(tcpTarget) }, { host = "backup.portunus.invalid", port = \(tcpTarget), priority = 5 }]
        [[rule]]
        name = "dgram"
        protocol = "udp"
        listen_port = \(udpListen)
        target = "127.0.0.1:\(udpTarget)"

        """
    }

    /// A forwarder with the endpoint on, its echo backends, and what the traffic sent.
    final class Setup {
        let tcpBackend: TestBackend
        let udpBackend: UDPEchoBackend
        let forwarder: ForwarderProcess
        let tcpPort: UInt16, udpPort: UInt16, metricsPort: UInt16

        init() throws {
            tcpBackend = try TestBackend(.echo)
            udpBackend = try UDPEchoBackend()
            tcpPort = freePort()
            udpPort = freeUDPListenPort()
            metricsPort = freePort()
            forwarder = try ForwarderProcess(config: MetricsEndpointTests.config(
                tcpListen: tcpPort, tcpTarget: tcpBackend.port, udpListen: udpPort, udpTarget: udpBackend.port,
                metrics: "127.0.0.1:\(metricsPort)"))
        }

        /// 3 TCP connections of 1,000 bytes each way (echoed), 4 UDP datagrams of 10 bytes.
        func sendTraffic() throws {
            for i in 0..<3 {
                let conn = try TestSocket.connect("127.0.0.1", tcpPort)
                let bytes = randomBytes(1000, seed: UInt64(i + 1))
                try conn.sendAll(bytes)
                #expect(try conn.receive(exactly: 1000) == bytes)
                conn.close()
            }
            let client = try UDPSocket()
            for _ in 0..<4 {
                try client.send([UInt8](repeating: 9, count: 10), to: udpPort)
                #expect(client.receive()?.bytes.count == 10)
            }
        }

        /// Scrapes until every connection has been counted closed (at most 10 s).
        func settledScrape() throws -> [String: String] {
            let deadline = Date().addingTimeInterval(10)
            while true {
                let response = try httpGet("127.0.0.1", metricsPort, "/metrics")
                #expect(response.status == 200)
                let samples = MetricsEndpointTests.samples(response.text)
                if samples[#"portunus_rule_connections_active{rule="web",protocol="tcp"}"#] == "0.0"
                    && samples[#"portunus_rule_connections_total{rule="web",protocol="tcp"}"#] == "3" || Date() > deadline {
                    return samples
                }
                usleep(50_000)
            }
        }
    }

    /// `name{labels}` → value, comment lines left out.
    static func samples(_ text: String) -> [String: String] {
        var samples: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let space = line.lastIndex(of: " ")!
            samples[String(line[..<space])] = String(line[line.index(after: space)...])
        }
        return samples
    }

    @Test func aScrapeAfterTrafficHasTheExactCountsAndPassesPromtool() throws {
        // Required, not skipped: the README's test command installs Debian's prometheus.
        try #require(FileManager.default.isExecutableFile(atPath: Self.promtool),
                     "\(Self.promtool) is missing: install Debian's prometheus (apt-get install -y prometheus)")
        let setup = try Setup()
        defer { setup.forwarder.stop() }
        #expect(setup.forwarder.stderrText.contains("event=standalone.metrics_listening address=127.0.0.1:\(setup.metricsPort)"))
        try setup.sendTraffic()
        let s = try setup.settledScrape()
        let web = #"{rule="web",protocol="tcp"}"#, dgram = #"{rule="dgram",protocol="udp"}"#
        #expect(s["portunus_rule_received_bytes_total" + web] == "3000")
        #expect(s["portunus_rule_sent_bytes_total" + web] == "3000")
        #expect(s["portunus_rule_connections_total" + web] == "3")
        #expect(s["portunus_rule_connections_active" + web] == "0.0")
        #expect(s["portunus_rule_connect_failures_total" + web] == "0")
        #expect(s["portunus_rule_received_datagrams_total" + dgram] == "4")
        #expect(s["portunus_rule_sent_datagrams_total" + dgram] == "4")
        #expect(s["portunus_rule_received_bytes_total" + dgram] == "40")
        #expect(s["portunus_rule_sent_bytes_total" + dgram] == "40")
        #expect(s["portunus_rule_flows_active" + dgram] == "1.0")
        #expect(s[#"portunus_target_up{rule="web",target="127.0.0.1:\#(setup.tcpBackend.port)"}"#] == "1.0")
        #expect(s[#"portunus_target_up{rule="web",target="backup.portunus.invalid:\#(setup.tcpBackend.port)"}"#] == "1.0")
        #expect(s[#"portunus_target_up{rule="dgram",target="127.0.0.1:\#(setup.udpBackend.port)"}"#] == "1.0")
        // One DNS-named target (never dialled: the first target answers).
        #expect(s["portunus_dns_names"] == "1.0" && s["portunus_dns_lookups_total"] == "0")
        #expect(s[#"portunus_build_info{version="0.1.0"}"#] == "1.0")
        #expect(s["portunus_config_reloads_total"] == "0" && s["portunus_config_last_reload_successful"] == "1.0")
        // The process figures are the forwarder's.
        let fds = try #require(Double(s["process_open_fds"] ?? ""))
        #expect(abs(fds - Double(setup.forwarder.openFileCount)) <= 3, "process_open_fds \(fds), /proc says \(setup.forwarder.openFileCount)")
        #expect((Double(s["process_resident_memory_bytes"] ?? "") ?? 0) > 1_048_576)

        let text = try httpGet("127.0.0.1", setup.metricsPort, "/metrics").body
        let lint = try runFiltering([Self.promtool, "check", "metrics"], input: text)
        #expect(lint.exitCode == 0 && lint.output.isEmpty, "promtool: exit \(lint.exitCode): \(lint.output)")
        // promtool can fail: the same text with a counter stripped of its _total suffix does.
        let broken = String(decoding: text, as: UTF8.self).replacingOccurrences(of: "portunus_dns_lookups_total", with: "portunus_dns_lookups")
        #expect(try runFiltering([Self.promtool, "check", "metrics"], input: Array(broken.utf8)).exitCode != 0)
    }

    /// Across reloads: counters of a rule whose name stays run on, a removed rule leaves
    /// the exposition, an invalid file counts as a failure and sets the last-reload gauge
    /// to 0, and the next good reload sets it back.
    @Test func reloadsAreCountedAndCountersRunOn() throws {
        let setup = try Setup()
        defer { setup.forwarder.stop() }
        try setup.sendTraffic()
        _ = try setup.settledScrape()
        let file = Self.config(tcpListen: setup.tcpPort, tcpTarget: setup.tcpBackend.port, udpListen: setup.udpPort,
                               udpTarget: setup.udpBackend.port, metrics: "127.0.0.1:\(setup.metricsPort)")
        // The UDP rule dropped, the TCP rule unchanged.
        let withoutUDP = String(file[..<file.range(of: "[[rule]]\nname = \"dgram\"")!.lowerBound])
        #expect(try setup.forwarder.reload(config: withoutUDP))
        let conn = try TestSocket.connect("127.0.0.1", setup.tcpPort)
        try conn.sendAll([1, 2, 3, 4, 5])
        #expect(try conn.receive(exactly: 5) == [1, 2, 3, 4, 5])
        conn.close()
        #expect(try setup.forwarder.reload(config: "[[rule]]\nname = 1\n") == false)
        let web = #"{rule="web",protocol="tcp"}"#
        var s: [String: String] = [:]
        let deadline = Date().addingTimeInterval(10)
        repeat {
            s = Self.samples(try httpGet("127.0.0.1", setup.metricsPort, "/metrics").text)
            usleep(50_000)
        } while s["portunus_rule_connections_active" + web] != "0.0" && Date() < deadline
        #expect(s["portunus_rule_connections_total" + web] == "4")
        #expect(s["portunus_rule_received_bytes_total" + web] == "3005")
        #expect(!s.keys.contains { $0.contains(#"rule="dgram""#) }, "the removed rule is still exposed")
        #expect(s["portunus_config_reloads_total"] == "1" && s["portunus_config_reload_failures_total"] == "1")
        #expect(s["portunus_config_last_reload_successful"] == "0.0")
        #expect(try setup.forwarder.reload(config: file))
        let after = Self.samples(try httpGet("127.0.0.1", setup.metricsPort, "/metrics").text)
        #expect(after["portunus_config_reloads_total"] == "2" && after["portunus_config_last_reload_successful"] == "1.0")
        // Added back, the UDP rule starts again from 0.
        #expect(after[#"portunus_rule_received_datagrams_total{rule="dgram",protocol="udp"}"#] == "0")
    }

    /// A real Prometheus, started here on a port of its own, scrapes the forwarder every
    /// second; its query API reports exactly the bytes and connections sent.
    @Test(.timeLimit(.minutes(1))) func prometheusScrapesTheExactCounts() throws {
        let setup = try Setup()
        defer { setup.forwarder.stop() }
        let prometheus = try PrometheusServer(scraping: "127.0.0.1:\(setup.metricsPort)")
        defer { prometheus.stop() }
        try setup.sendTraffic()
        let expected = [
            #"portunus_rule_received_bytes_total{rule="web"}"#: "3000",
            #"portunus_rule_sent_bytes_total{rule="web"}"#: "3000",
            #"portunus_rule_connections_total{rule="web"}"#: "3",
            #"portunus_rule_received_datagrams_total{rule="dgram",protocol="udp"}"#: "4",
            #"up{job="portunus"}"#: "1",
        ]
        var seen: [String: String?] = [:]
        let deadline = Date().addingTimeInterval(30)
        repeat {
            for query in expected.keys { seen[query] = try prometheus.query(query) }
            if seen.allSatisfy({ expected[$0.key] == $0.value }) { break }
            usleep(500_000)
        } while Date() < deadline
        for (query, value) in expected {
            #expect(seen[query] == value, "\(query): \(String(describing: seen[query])), prometheus log: \(prometheus.log.suffix(500))")
        }
    }

    @Test func theFlagOverridesTheFileAndIsValidated() throws {
        for bad in ["127.0.0.1", "127.0.0.1:0", "::1:9300", "localhost:9300", "[::1]:70000"] {
            let result = try runBinary(["--metrics-listen", bad, "--check", "--config", "/nonexistent.toml"])
            #expect(result.exitCode == 2, "\(bad)")
            #expect(result.stderr.contains("--metrics-listen: "), "\(bad): \(result.stderr)")
        }
        let backend = try TestBackend(.echo)
        let fileMetrics = freePort(), flagMetrics = freePort(), listen = freePort()
        let forwarder = try ForwarderProcess(config: tcpRuleConfig(listenPort: listen, target: "127.0.0.1:\(backend.port)",
                                                                   extra: "[metrics]\nlisten = \"127.0.0.1:\(fileMetrics)\"\n"),
                                             arguments: ["--metrics-listen", "127.0.0.1:\(flagMetrics)"])
        defer { forwarder.stop() }
        #expect(try httpGet("127.0.0.1", flagMetrics, "/metrics").status == 200)
        #expect(throws: TestError.self) { try TestSocket.connect("127.0.0.1", fileMetrics) }
    }

    @Test func aBadListenInTheFileIsRefusedWithItsLineAndColumn() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pu-metrics-\(UUID().uuidString).toml").path
        try "[metrics]\n listen = \"127.0.0.1:0\"\n[[rule]]\nname = \"a\"\nlisten_port = \(freePort())\ntarget = \"127.0.0.1:9\"\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        for arguments in [["--check"], ["--no-stats"]] {
            let result = try runBinary(["--config", path] + arguments)
            #expect(result.exitCode == 2)
            #expect(result.stderr.hasPrefix("\(path):2:2: error[validation.metrics_listen_invalid]: metrics.listen: "), "\(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1)
        }
    }

    /// As with the stats socket: an endpoint that cannot be bound is logged and the
    /// forwarder forwards on without it; without an address there is no endpoint.
    @Test func aBusyMetricsPortIsLoggedAndTheForwarderRunsOn() throws {
        let backend = try TestBackend(.echo)
        let holder = try TestBackend(.neverAccept)
        let listen = freePort()
        let forwarder = try ForwarderProcess(config: tcpRuleConfig(listenPort: listen, target: "127.0.0.1:\(backend.port)"),
                                             arguments: ["--metrics-listen", "127.0.0.1:\(holder.port)"])
        #expect(forwarder.stderrText.contains("event=standalone.metrics_failed address=127.0.0.1:\(holder.port) error=bind: Address already in use (errno 98)"),
                "\(forwarder.stderrText)")
        let conn = try TestSocket.connect("127.0.0.1", listen)
        try conn.sendAll(Array("ping".utf8))
        #expect(try conn.receive(exactly: 4) == Array("ping".utf8))
        conn.close()
        #expect(forwarder.stop().exitCode == 0)

        let plain = try ForwarderProcess(config: tcpRuleConfig(listenPort: freePort(), target: "127.0.0.1:\(backend.port)"))
        #expect(!plain.stderrText.contains("metrics"))
        plain.stop()
    }
}
