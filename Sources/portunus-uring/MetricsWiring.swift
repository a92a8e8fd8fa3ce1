import Glibc
import Logging
import PortunusConfig
import PortunusEngine
import PortunusMetrics
import PortunusStats

/// The metrics endpoint wired to the running forwarder: which address to serve (the
/// command line over `[metrics] listen`) and the snapshot the exporter reads at each
/// scrape. The only place that knows both the engine and the exporter.
extension PortunusCommand {
    /// `--metrics-listen` parsed (validated in `validate()`), else `[metrics] listen`.
    func metricsAddress(_ configuration: Configuration) -> ListenAddress? {
        metricsListen.flatMap(ListenAddress.init) ?? configuration.metrics.listen
    }

    /// The Prometheus endpoint, when an address is given; one that cannot be bound is
    /// logged (`standalone.metrics_failed`) and the forwarder runs on without it.
    func startMetrics(_ configuration: Configuration, _ engine: Engine, _ logger: Logger) -> MetricsServer? {
        guard let address = metricsAddress(configuration) else { return nil }
        let snapshot = Self.metricsSnapshot(engine: engine, configuration: configuration,
                                            loadedUnixSeconds: Self.unixSeconds())
        return MetricsServer.start(address: address, exporter: MetricsExporter(version: PortunusVersion.string),
                                   logger: logger, snapshot: snapshot)
    }

    /// Builds, at each call, the snapshot of `engine` running `configuration` (loaded at
    /// `loadedUnixSeconds`): counters summed over the workers, target health, the
    /// resolver's figures. Reads only (relaxed atomic loads), from the metrics thread.
    /// No reload exists yet, so the reload figures are 0, 0 and true.
    static func metricsSnapshot(engine: Engine, configuration: Configuration,
                                loadedUnixSeconds: Double) -> @Sendable () -> MetricsSnapshot {
        let names = engine.plan.ruleNames
        // Rules in plan order are the file's order (ForwardingPlan.compile).
        let protocols = configuration.rules.map(\.proto.rawValue)
        return {
            let rules = zip(zip(names, protocols), engine.counters()).map { rule, counters in
                MetricsSnapshot.Rule(name: rule.0, proto: rule.1, counters: counters)
            }
            let targets = engine.targetStates().map { state in
                MetricsSnapshot.Target(rule: names[state.rule], target: state.target, up: state.healthy)
            }
            let dns = engine.resolverFigures().map { figures in
                DNSFigures(names: UInt64(figures.names), cachedNames: figures.cachedNames, cacheAnswers: figures.cacheAnswers,
                           lookups: figures.lookups, lookupFailures: figures.lookupFailures)
            }
            return MetricsSnapshot(rules: rules, targets: targets, dns: dns, reloads: 0, reloadFailures: 0,
                                   lastReloadSuccessful: true, configLoadedUnixSeconds: loadedUnixSeconds)
        }
    }

    /// Now, in seconds since the Unix epoch.
    static func unixSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
