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
    func startMetrics(_ configuration: Configuration, _ forwarder: Forwarder, _ logger: Logger) -> MetricsServer? {
        guard let address = metricsAddress(configuration) else { return nil }
        return MetricsServer.start(address: address, exporter: MetricsExporter(version: PortunusVersion.string),
                                   logger: logger, snapshot: Self.metricsSnapshot(forwarder))
    }

    /// Builds, at each call, the snapshot of the forwarder: the configuration in force,
    /// its rules' counters (summed by name over the engines a reload left draining), the
    /// current engine's target health and resolver figures, the reloads. Reads only
    /// (relaxed atomic loads, and the forwarder's lock for a moment), from the metrics thread.
    static func metricsSnapshot(_ forwarder: Forwarder) -> @Sendable () -> MetricsSnapshot {
        {
            let (configuration, engine, reloads) = forwarder.view()
            let names = configuration.rules.map(\.name)
            let rules = zip(configuration.rules, forwarder.counters(named: names)).map { rule, counters in
                MetricsSnapshot.Rule(name: rule.name, proto: rule.proto.rawValue, counters: counters)
            }
            let targets = engine.targetStates().map { state in
                MetricsSnapshot.Target(rule: engine.plan.ruleNames[state.rule], target: state.target, up: state.healthy)
            }
            let dns = engine.resolverFigures()
            return MetricsSnapshot(rules: rules, targets: targets, dns: dns, reloads: reloads.applied, reloadFailures: reloads.failed,
                                   lastReloadSuccessful: reloads.lastSuccessful, configLoadedUnixSeconds: reloads.loadedUnixSeconds)
        }
    }
}
