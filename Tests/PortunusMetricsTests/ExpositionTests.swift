// The exporter on synthetic snapshots: what the text says, and how it follows totals
// that rise, fall (a rule re-added) and disappear.
#if canImport(Glibc)
import Glibc
#endif
import PortunusEngine
import PortunusResolver
@testable import PortunusMetrics
import Testing

/// The exposition read back: samples by `name{labels}`, and the HELP and TYPE of each name.
struct Exposition {
    var samples: [String: String] = [:]
    var help: [String: String] = [:]
    var type: [String: String] = [:]
    /// Names in the order their samples first appear, to check each name's lines are together.
    var sampleNames: [String] = []
    let text: String

    init(_ bytes: [UInt8]) {
        text = String(decoding: bytes, as: UTF8.self)
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# HELP ") {
                let rest = line.dropFirst(7)
                let space = rest.firstIndex(of: " ")!
                help[String(rest[..<space])] = String(rest[rest.index(after: space)...])
            } else if line.hasPrefix("# TYPE ") {
                let parts = line.dropFirst(7).split(separator: " ")
                type[String(parts[0])] = String(parts[1])
            } else {
                let space = line.lastIndex(of: " ")!
                let series = String(line[..<space])
                samples[series] = String(line[line.index(after: space)...])
                let name = String(series.prefix { $0 != "{" })
                if sampleNames.last != name { sampleNames.append(name) }
            }
        }
    }

    subscript(_ series: String) -> String? { samples[series] }
}

func counters(_ body: (inout RuleCounters) -> Void) -> RuleCounters {
    var c = RuleCounters()
    body(&c)
    return c
}

func snapshot(_ rules: [MetricsSnapshot.Rule], targets: [MetricsSnapshot.Target] = [], dns: ResolverFigures? = nil,
              reloads: UInt64 = 0, reloadFailures: UInt64 = 0, lastOK: Bool = true, loaded: Double = 1_700_000_000.5) -> MetricsSnapshot {
    MetricsSnapshot(rules: rules, targets: targets, dns: dns, reloads: reloads, reloadFailures: reloadFailures,
                    lastReloadSuccessful: lastOK, configLoadedUnixSeconds: loaded)
}

@Suite struct ExpositionTests {
    @Test func aSyntheticSnapshotIsWrittenWithEveryFigure() {
        let web = counters {
            $0.bytesIn = 1234; $0.bytesOut = 5678; $0.connectionsTotal = 9; $0.connectionsActive = 2
            $0.connectFailures = 3; $0.preludeFailures = 1; $0.rejected = 4; $0.idleClosed = 5; $0.targetFailovers = 6
            $0.dnsFailures = 7; $0.splicedHalves = 8; $0.pipesDiscarded = 10; $0.spilledSends = 11
        }
        let dns = counters {
            $0.datagramsIn = 21; $0.datagramsOut = 22; $0.flowsActive = 3; $0.icmpEvict = 23; $0.emsgsize = 24
            $0.wouldblock = 25; $0.flowsDroppedOverflow = 26; $0.flowsPendingDrops = 27; $0.sendDropped = 28
        }
        let exporter = MetricsExporter(version: "9.8.7")
        let text = Exposition(exporter.exposition(of: snapshot(
            [.init(name: "web", proto: "tcp", counters: web), .init(name: "dns", proto: "udp", counters: dns)],
            targets: [.init(rule: "web", target: "10.0.0.1:80", up: true), .init(rule: "web", target: "b.internal:80", up: false)],
            dns: ResolverFigures(names: 2, cachedNames: 1, cacheAnswers: 40, lookups: 5, lookupFailures: 2),
            reloads: 3, reloadFailures: 1, lastOK: false, loaded: 1_700_000_000.5)))
        let w = #"{rule="web",protocol="tcp"}"#, d = #"{rule="dns",protocol="udp"}"#
        #expect(text["portunus_rule_received_bytes_total" + w] == "1234")
        #expect(text["portunus_rule_sent_bytes_total" + w] == "5678")
        #expect(text["portunus_rule_connections_total" + w] == "9")
        #expect(text["portunus_rule_connections_active" + w] == "2.0")
        #expect(text["portunus_rule_connect_failures_total" + w] == "3")
        #expect(text["portunus_rule_prelude_failures_total" + w] == "1")
        #expect(text["portunus_rule_rejected_connections_total" + w] == "4")
        #expect(text["portunus_rule_idle_closed_connections_total" + w] == "5")
        #expect(text["portunus_rule_target_failovers_total" + w] == "6")
        #expect(text["portunus_rule_dns_failures_total" + w] == "7")
        #expect(text["portunus_rule_spliced_halves_total" + w] == "8")
        #expect(text["portunus_rule_pipes_discarded_total" + w] == "10")
        #expect(text["portunus_rule_spilled_sends_total" + w] == "11")
        #expect(text["portunus_rule_received_datagrams_total" + d] == "21")
        #expect(text["portunus_rule_sent_datagrams_total" + d] == "22")
        #expect(text["portunus_rule_flows_active" + d] == "3.0")
        #expect(text["portunus_rule_icmp_evictions_total" + d] == "23")
        for (reason, value) in [("emsgsize", "24"), ("wouldblock", "25"), ("flows_dropped_overflow", "26"),
                                ("flows_pending_drops", "27"), ("send_dropped", "28")] {
            #expect(text[#"portunus_rule_dropped_datagrams_total{rule="dns",protocol="udp",reason="\#(reason)"}"#] == value)
            #expect(text[#"portunus_rule_dropped_datagrams_total{rule="web",protocol="tcp",reason="\#(reason)"}"#] == "0")
        }
        #expect(text[#"portunus_target_up{rule="web",target="10.0.0.1:80"}"#] == "1.0")
        #expect(text[#"portunus_target_up{rule="web",target="b.internal:80"}"#] == "0.0")
        #expect(text["portunus_dns_names"] == "2.0")
        #expect(text["portunus_dns_cache_entries"] == "1.0")
        #expect(text["portunus_dns_cache_answers_total"] == "40")
        #expect(text["portunus_dns_lookups_total"] == "5")
        #expect(text["portunus_dns_lookup_failures_total"] == "2")
        #expect(text["portunus_config_reloads_total"] == "3")
        #expect(text["portunus_config_reload_failures_total"] == "1")
        #expect(text["portunus_config_last_reload_successful"] == "0.0")
        #expect(text["portunus_config_loaded_timestamp_seconds"] == "1700000000.5")
        #expect(text[#"portunus_build_info{version="9.8.7"}"#] == "1.0")
        // The process figures are this test process's own.
        let fds = Double(text["process_open_fds"] ?? "") ?? 0
        #expect(fds >= 3)
        #expect((Double(text["process_resident_memory_bytes"] ?? "") ?? 0) > 1_048_576)
        #expect((Double(text["process_virtual_memory_bytes"] ?? "") ?? 0) > 1_048_576)
        #expect((Double(text["process_max_fds"] ?? "") ?? 0) >= fds)
        let start = Double(text["process_start_time_seconds"] ?? "") ?? 0
        #expect(start > 1_600_000_000 && start <= MetricsExporterClock.unixSeconds() + 1)
        // One rule-metric per RuleCounters field and reason: 17 plain, 5 drop reasons, 2 rules.
        #expect(text.samples.keys.filter { $0.hasPrefix("portunus_rule_") }.count == 2 * (18 + 5))
    }

    @Test func everyNameHasHelpAndTypeAndItsSamplesTogether() {
        let exporter = MetricsExporter(version: "1")
        let text = Exposition(exporter.exposition(of: snapshot(
            [.init(name: "a", proto: "tcp", counters: RuleCounters()), .init(name: "b", proto: "udp", counters: RuleCounters())],
            targets: [.init(rule: "a", target: "h:1", up: true)],
            dns: ResolverFigures(names: 1, cachedNames: 0, cacheAnswers: 0, lookups: 0, lookupFailures: 0))))
        let names = Set(text.sampleNames)
        #expect(names.count == text.sampleNames.count, "a name's samples are split: \(text.sampleNames)")
        for name in names {
            #expect(text.help[name].map { !$0.isEmpty } == true, "no HELP for \(name)")
            let type = text.type[name]
            #expect(type == (name.hasSuffix("_total") ? "counter" : "gauge"), "\(name) is \(type ?? "untyped")")
        }
        #expect(Set(text.help.keys) == names && Set(text.type.keys) == names)
    }

    @Test func countersRiseByTheDifferenceBetweenScrapes() {
        let exporter = MetricsExporter(version: "1")
        let series = #"portunus_rule_received_bytes_total{rule="web",protocol="tcp"}"#
        var totals: [String] = []
        for bytes: UInt64 in [0, 100, 100, 250, 1 << 40, UInt64.max / 2] {
            let c = counters { $0.bytesIn = bytes; $0.connectionsActive = bytes % 7 }
            let text = Exposition(exporter.exposition(of: snapshot([.init(name: "web", proto: "tcp", counters: c)])))
            totals.append(text[series] ?? "-")
            #expect(text[#"portunus_rule_connections_active{rule="web",protocol="tcp"}"#] == "\(Double(bytes % 7))")
        }
        #expect(totals == ["0", "100", "100", "250", "\(1 << 40)", "\(UInt64.max / 2)"])
    }

    /// A rule removed and added back by a reload starts from zero: its total went down, so
    /// the series starts again at the new total rather than staying at the old one.
    @Test func aCounterWhoseTotalWentDownStartsAgain() {
        let exporter = MetricsExporter(version: "1")
        let series = #"portunus_rule_connections_total{rule="web",protocol="tcp"}"#
        let scrape: (UInt64) -> String? = { total in
            Exposition(exporter.exposition(of: snapshot([.init(name: "web", proto: "tcp", counters: counters { $0.connectionsTotal = total })])))[series]
        }
        #expect(scrape(500) == "500")
        #expect(scrape(3) == "3")
        #expect(scrape(10) == "10")
        #expect(scrape(0) == "0")
    }

    @Test func seriesOfARuleOrTargetThatWentAreRemoved() {
        let exporter = MetricsExporter(version: "1")
        let both = Exposition(exporter.exposition(of: snapshot(
            [.init(name: "a", proto: "tcp", counters: counters { $0.bytesIn = 5 }), .init(name: "b", proto: "udp", counters: counters { $0.bytesIn = 6 })],
            targets: [.init(rule: "a", target: "h:1", up: true), .init(rule: "b", target: "h:2", up: true)],
            dns: ResolverFigures(names: 1, cachedNames: 1, cacheAnswers: 1, lookups: 1, lookupFailures: 0))))
        #expect(both.samples.keys.contains { $0.contains(#"rule="b""#) })
        let one = Exposition(exporter.exposition(of: snapshot(
            [.init(name: "a", proto: "tcp", counters: counters { $0.bytesIn = 7 })], targets: [.init(rule: "a", target: "h:1", up: false)])))
        #expect(!one.samples.keys.contains { $0.contains(#"rule="b""#) }, "\(one.text)")
        #expect(one[#"portunus_rule_received_bytes_total{rule="a",protocol="tcp"}"#] == "7")
        #expect(one[#"portunus_target_up{rule="a",target="h:1"}"#] == "0.0")
        #expect(one[#"portunus_target_up{rule="b",target="h:2"}"#] == nil)
        // The resolver's figures went with the last DNS target: their names too.
        #expect(!one.text.contains("portunus_dns_"))
        // A rule whose protocol changed is a new series; the old one goes.
        let udp = Exposition(exporter.exposition(of: snapshot([.init(name: "a", proto: "udp", counters: counters { $0.bytesIn = 1 })])))
        #expect(udp[#"portunus_rule_received_bytes_total{rule="a",protocol="udp"}"#] == "1")
        #expect(udp[#"portunus_rule_received_bytes_total{rule="a",protocol="tcp"}"#] == nil)
    }

    /// A target dialled from every port of a listen range is listed once per port: it is up
    /// only when every listing is.
    @Test func aTargetListedTwiceIsUpOnlyWhenBothAre() {
        let exporter = MetricsExporter(version: "1")
        let text = Exposition(exporter.exposition(of: snapshot([.init(name: "r", proto: "tcp", counters: RuleCounters())],
            targets: [.init(rule: "r", target: "h:1", up: true), .init(rule: "r", target: "h:1", up: false),
                      .init(rule: "r", target: "h:2", up: true), .init(rule: "r", target: "h:2", up: true)])))
        #expect(text[#"portunus_target_up{rule="r",target="h:1"}"#] == "0.0")
        #expect(text[#"portunus_target_up{rule="r",target="h:2"}"#] == "1.0")
        #expect(text.samples.keys.filter { $0.hasPrefix("portunus_target_up") }.count == 2)
    }

    /// Rule names are free text: `"`, `\` and a line feed are escaped as the format requires.
    @Test func labelValuesAreEscaped() {
        let exporter = MetricsExporter(version: "v\"1\\")
        let text = Exposition(exporter.exposition(of: snapshot([.init(name: "we\"b\\x\ny ü", proto: "tcp", counters: counters { $0.bytesOut = 42 })])))
        #expect(text[#"portunus_rule_sent_bytes_total{rule="we\"b\\x\ny ü",protocol="tcp"}"#] == "42", "\(text.text)")
        #expect(text[#"portunus_build_info{version="v\"1\\"}"#] == "1.0")
        #expect(!text.text.contains("x\ny"), "a raw line feed inside a label")
    }
}

/// The wall clock, for bounds on the process start time.
enum MetricsExporterClock {
    static func unixSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
