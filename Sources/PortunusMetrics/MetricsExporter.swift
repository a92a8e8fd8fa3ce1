import PortunusEngine
import PortunusStats
import Prometheus
import Synchronization

/// Turns ``MetricsSnapshot``s into the Prometheus text exposition format (version
/// 0.0.4), with swift-prometheus's ``PrometheusCollectorRegistry`` as the writer.
///
/// The registry lives as long as the exporter. The engine's counters are totals (per
/// worker words summed at read time), so each scrape brings every registry counter up to
/// the snapshot's total by the difference since the last scrape. A total lower than the
/// last one means the series began again (a reload removed the rule and added it back):
/// that counter is unregistered and made anew from zero, which Prometheus's `rate()`
/// reads as a counter reset. A series whose rule or target is no longer in the snapshot
/// is unregistered, so it leaves the exposition.
public final class MetricsExporter: Sendable {
    /// What `portunus_build_info` carries in its `version` label.
    public let version: String
    private let registry = PrometheusCollectorRegistry()
    private let book = Mutex(SeriesBook())
    private let startTimeUnixSeconds: Double?

    /// An exporter whose build info says `version` (the forwarder's `-V`).
    public init(version: String) {
        self.version = version
        startTimeUnixSeconds = ProcessFigures.startTimeUnixSeconds()
    }

    /// The registry made to agree with `snapshot` (and with /proc for the `process_`
    /// figures), then written out: one HELP and one TYPE line per metric name, each
    /// name's samples together. Scrapes are serialised (the lock is held throughout),
    /// so two scrapers never apply the same difference twice.
    public func exposition(of snapshot: MetricsSnapshot) -> [UInt8] {
        book.withLock { book in
            var pass = Pass(registry: registry, book: book)
            record(snapshot, into: &pass)
            book = pass.finish()
            var bytes: [UInt8] = []
            bytes.reserveCapacity(16 << 10)
            registry.emit(into: &bytes)
            return bytes
        }
    }

    private func record(_ snapshot: MetricsSnapshot, into pass: inout Pass) {
        for rule in snapshot.rules {
            let labels = [("rule", rule.name), ("protocol", rule.proto)]
            for metric in RuleMetric.all {
                let value = metric.value(rule.counters)
                switch metric.kind {
                case .counter: pass.counter(metric.name, metric.help, labels + metric.extraLabels, total: value)
                case .gauge: pass.gauge(metric.name, metric.help, labels + metric.extraLabels, Double(value))
                }
            }
        }
        // A target listed more than once (one entry per port of a listen range) is up
        // only when every entry is: an alert then fires on any Failed dial path.
        var targetOrder: [TargetKey] = []
        var targetUp: [TargetKey: Bool] = [:]
        for target in snapshot.targets {
            let key = TargetKey(rule: target.rule, target: target.target)
            if let up = targetUp[key] { targetUp[key] = up && target.up } else {
                targetOrder.append(key)
                targetUp[key] = target.up
            }
        }
        for key in targetOrder {
            pass.gauge("portunus_target_up", "Whether a rule's target is Healthy (1) or Failed (0) for the dialler.",
                       [("rule", key.rule), ("target", key.target)], targetUp[key]! ? 1 : 0)
        }
        if let dns = snapshot.dns {
            pass.gauge("portunus_dns_names", "DNS names among the targets.", [], Double(dns.names))
            pass.gauge("portunus_dns_cache_entries", "DNS names whose answers the resolver's cache holds now.", [], Double(dns.cachedNames))
            pass.counter("portunus_dns_cache_answers_total", "Requests for a name the resolver's cache answered without a lookup.", [],
                         total: dns.cacheAnswers)
            pass.counter("portunus_dns_lookups_total", "DNS lookups begun.", [], total: dns.lookups)
            pass.counter("portunus_dns_lookup_failures_total", "DNS lookups that ended without an answer.", [], total: dns.lookupFailures)
        }
        pass.counter("portunus_config_reloads_total", "Configuration reloads that took effect.", [], total: snapshot.reloads)
        pass.counter("portunus_config_reload_failures_total", "Configuration reloads refused (the file was invalid; the previous one stays).", [],
                     total: snapshot.reloadFailures)
        pass.gauge("portunus_config_last_reload_successful", "Whether the last configuration reload succeeded (1 before any).", [],
                   snapshot.lastReloadSuccessful ? 1 : 0)
        pass.gauge("portunus_config_loaded_timestamp_seconds", "When the configuration in force was loaded, in seconds since the Unix epoch.", [],
                   snapshot.configLoadedUnixSeconds)
        pass.gauge("portunus_build_info", "The forwarder's version, in the version label; always 1.", [("version", version)], 1)
        let process = ProcessFigures.read()
        if let fds = process.fdOpen { pass.gauge("process_open_fds", "Number of open file descriptors.", [], Double(fds)) }
        if let fds = process.fdLimit { pass.gauge("process_max_fds", "Maximum number of open file descriptors.", [], Double(fds)) }
        if let bytes = process.rssBytes {
            pass.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", [], Double(bytes))
        }
        if let bytes = process.virtualBytes {
            pass.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", [], Double(bytes))
        }
        if let start = startTimeUnixSeconds {
            pass.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", [], start)
        }
    }
}

private struct TargetKey: Hashable {
    let rule: String
    let target: String
}

/// A series: a metric name and its label pairs, in order.
struct SeriesKey: Hashable {
    let name: String
    let labels: [String]

    init(_ name: String, _ labels: [(String, String)]) {
        self.name = name
        self.labels = labels.flatMap { [$0.0, $0.1] }
    }
}

/// The series the registry holds, with each counter's total as last shown.
struct SeriesBook {
    var counters: [SeriesKey: (counter: Counter, total: UInt64)] = [:]
    var gauges: [SeriesKey: Gauge] = [:]
}

/// One scrape's update of the registry: every series the snapshot has is set, and
/// ``finish()`` unregisters the ones it no longer has.
private struct Pass {
    let registry: PrometheusCollectorRegistry
    var old: SeriesBook
    var new = SeriesBook()

    init(registry: PrometheusCollectorRegistry, book: SeriesBook) {
        self.registry = registry
        old = book
    }

    mutating func counter(_ name: String, _ help: String, _ labels: [(String, String)], total: UInt64) {
        let key = SeriesKey(name, labels)
        if new.counters[key] != nil { return }   // listed twice: the first stands
        var entry: (counter: Counter, total: UInt64)
        switch old.counters.removeValue(forKey: key) {
        case let kept? where kept.total <= total:
            entry = kept
        case let dropped?:
            // Its total went down (the series began again): unregistered first, or the
            // registry would hand the same counter back.
            registry.unregisterCounter(dropped.counter)
            entry = (registry.makeCounter(descriptor: Self.descriptor(name, help), labels: labels), 0)
        case nil:
            entry = (registry.makeCounter(descriptor: Self.descriptor(name, help), labels: labels), 0)
        }
        // Counter.increment takes an Int64: a difference past 2^63 goes in two steps.
        var delta = total - entry.total
        while delta > 0 {
            let step = min(delta, UInt64(Int64.max))
            entry.counter.increment(by: Int64(step))
            delta -= step
        }
        entry.total = total
        new.counters[key] = entry
    }

    mutating func gauge(_ name: String, _ help: String, _ labels: [(String, String)], _ value: Double) {
        let key = SeriesKey(name, labels)
        let gauge = old.gauges.removeValue(forKey: key) ?? new.gauges[key]
            ?? registry.makeGauge(descriptor: Self.descriptor(name, help), labels: labels)
        gauge.set(to: value)
        new.gauges[key] = gauge
    }

    /// The whole name in `metricName` (our names carry their unit and `_total` already).
    private static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    /// Unregisters what the snapshot no longer has; returns the book to keep.
    func finish() -> SeriesBook {
        for entry in old.counters.values { registry.unregisterCounter(entry.counter) }
        for gauge in old.gauges.values { registry.unregisterGauge(gauge) }
        return new
    }
}
