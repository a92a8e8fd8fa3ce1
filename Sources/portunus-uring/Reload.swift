import Glibc
import Logging
import PortunusConfig
import PortunusEngine
import PortunusStats

/// SIGHUP: re-read and validate the file as `--check` does, then apply it
/// (``Forwarder/reload(_:)``), or keep serving the running configuration.
extension PortunusCommand {
    /// What a reload did, for the serve loop's counters.
    enum ReloadOutcome {
        case applied
        case failed
    }

    func reload(_ forwarder: Forwarder, stats: StatsServer?, logger: Logger) -> ReloadOutcome {
        let startedNs = Self.monotonicNs()
        let running = forwarder.configuration
        let configuration: Configuration
        do {
            configuration = try ConfigLoader.load(path: config)
            _ = try ResourceBudget.make(plan: ForwardingPlan.compile(configuration), settings: engineSettings,
                                        maxConnections: configuration.global.maxConnections)
        } catch let error as ConfigError {
            for diagnostic in error.diagnostics {
                logger.error("\(diagnostic.description)", metadata: [
                    "event": "standalone.reload_invalid", "code": "\(diagnostic.code)", "path": "\(config)",
                ])
            }
            forwarder.recordFailedReload()
            logReloadFailed(logger, reason: "the file is not valid (\(error.diagnostics.count) error(s))", startedNs)
            return .failed
        } catch {
            logger.error("\(error)", metadata: ["event": "standalone.reload_invalid", "code": "fd_limit_too_low", "path": "\(config)"])
            forwarder.recordFailedReload()
            logReloadFailed(logger, reason: "\(error)", startedNs)
            return .failed
        }
        for warning in configuration.warnings {
            logger.warning("\(warning.description)", metadata: ["event": "standalone.config_warning", "code": "\(warning.code)"])
        }
        let summary: ReloadSummary
        do {
            summary = try forwarder.reload(configuration)
        } catch {
            for problem in error.problems {
                logger.error("\(problem.description)", metadata: ["event": "standalone.reload_apply_failed"])
            }
            logReloadFailed(logger, reason: "the new configuration could not start", startedNs)
            return .failed
        }
        let applied = forwarder.configuration
        let names = applied.rules.map(\.name)
        stats?.replace(documents: StatsDocuments(configuration: applied, replacing: stats?.documents) { forwarder.counters(named: names) })
        for (rule, problem, kept) in summary.failed {
            logger.error("rule failed to bind on reload", metadata: [
                "event": "rule.failed", "rule": "\(rule)", "rule_id": .stringConvertible(BLAKE3.ruleID(rule)),
                "error": "\(problem.description)",
                "action": "\(kept ? "kept running with its previous settings" : "left out")",
            ])
        }
        for name in summary.removed {
            logger.info("rule removed", metadata: ["event": "rule.removed", "rule": "\(name)", "rule_id": .stringConvertible(BLAKE3.ruleID(name))])
        }
        let activated = Set(summary.added + summary.changed)
        logRules(applied.rules.filter { activated.contains($0.name) }, logger)
        for note in restartOnlyChanges(running, applied) {
            logger.warning("\(note)", metadata: ["event": "standalone.reload_needs_restart"])
        }
        func list(_ names: [String]) -> Logger.Metadata.Value { .string(names.joined(separator: ",")) }
        logger.info("configuration reloaded", metadata: [
            "event": "standalone.reload", "path": "\(config)",
            "added": list(summary.added), "removed": list(summary.removed), "changed": list(summary.changed),
            "unchanged": list(summary.unchanged), "failed": list(summary.failed.map(\.rule)),
            "draining_engines": .stringConvertible(summary.draining), "forced_stops": .stringConvertible(summary.forcedStops),
            "forced_cuts": .stringConvertible(summary.forcedCuts),
            "duration_ms": .stringConvertible(Double((Self.monotonicNs() - startedNs) / 1000) / 1000),
        ])
        return .applied
    }

    private func logReloadFailed(_ logger: Logger, reason: String, _ startedNs: Int64) {
        logger.error("reload failed; still serving the running configuration", metadata: [
            "event": "standalone.reload_failed", "path": "\(config)", "reason": "\(reason)",
            "duration_ms": .stringConvertible(Double((Self.monotonicNs() - startedNs) / 1000) / 1000),
        ])
    }

    /// Settings a reload reads but cannot change in a running process.
    private func restartOnlyChanges(_ old: Configuration, _ new: Configuration) -> [String] {
        var notes: [String] = []
        if old.global.logFilter != new.global.logFilter || old.global.logFormat != new.global.logFormat {
            notes.append("[global] log_level / log_format changed: logging keeps its start-up settings until a restart")
        }
        if old.stats.enabled != new.stats.enabled || old.stats.socketPath != new.stats.socketPath {
            notes.append("[stats] enabled / socket_path changed: the stats socket keeps its start-up place until a restart")
        }
        return notes
    }

    static func monotonicNs() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }
}
