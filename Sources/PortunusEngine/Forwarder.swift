import Glibc
import Logging
import PortunusConfig
import Synchronization

/// What a reload changed, by rule name, for the `standalone.reload` log line.
public struct ReloadSummary: Sendable {
    public var added: [String] = []
    public var removed: [String] = []
    public var changed: [String] = []
    public var unchanged: [String] = []
    /// Rules of the new file whose new listen ports could not be bound: each left out
    /// (`keptRunning` false) or, when it was running already and nothing else claims
    /// its ports, kept as it was (`keptRunning` true).
    public var failed: [(rule: String, problem: EngineError, keptRunning: Bool)] = []
    /// Engines of earlier configurations still holding connections, after this one.
    public var draining = 0
    /// Earlier engines stopped (drain budget, then cut) because more than
    /// ``Forwarder/maxDrainingEngines`` were left, and cut at once because more than
    /// ``Forwarder/maxEngines`` were.
    public var forcedStops = 0
    public var forcedCuts = 0
}

/// The running forwarder across reloads: the engine serving the configuration in
/// force, and the engines of earlier configurations still draining their connections.
///
/// A reload starts a new engine that shares the listen sockets of every port both
/// configurations have (``Engine/init(configuration:settings:logger:inheriting:)``),
/// then retires the old one: it accepts nothing more, its connections keep the
/// targets they were dialled with, those on ports the new file dropped are cut after
/// `shutdown_drain_secs`, and it ends when its last connection does. Counters are
/// kept by rule name, so a rule whose name is unchanged counts on.
///
/// Threads: `reload`, `reap`, `stop` and `wait` are for the thread that owns the
/// forwarder (the main thread); `counters`, `configuration` and `current` may be read
/// from any thread (the stats and metrics servers).
public final class Forwarder: @unchecked Sendable {
    // @unchecked: `state` is behind its mutex; `settings` and `logger` are immutable.
    private struct State {
        var configuration: Configuration
        var current: Engine
        /// Oldest first.
        var draining: [Engine] = []
        /// The final totals of ended engines, by rule name (names of the configuration
        /// in force only).
        var carried: [String: RuleCounters] = [:]
        var reloads = ReloadRecord(loadedUnixSeconds: Forwarder.unixSeconds())
    }

    /// Reloads so far, for the metrics.
    public struct ReloadRecord: Sendable {
        /// Reloads that took effect, and reloads refused (an invalid file, or a new
        /// configuration that could not start).
        public var applied: UInt64 = 0
        public var failed: UInt64 = 0
        /// Whether the last reload took effect (true before any).
        public var lastSuccessful = true
        /// When the configuration in force was loaded (Unix time).
        public var loadedUnixSeconds: Double
    }

    /// At most this many earlier engines may keep their connections open without a
    /// deadline (each holds a thread per worker and their rings); past it, the oldest
    /// is stopped: its connections get the drain budget, then are cut.
    public static let maxDrainingEngines = 8
    /// At most this many earlier engines in all, stopped ones included (reloads faster
    /// than the drain budget): past it, the oldest is cut at once.
    public static let maxEngines = 16

    private let state: Mutex<State>
    private let settings: EngineSettings
    private let logger: Logger

    /// Binds every listener and starts the workers of `configuration`.
    public init(configuration: Configuration, settings: EngineSettings, logger: Logger) throws(EngineStartupError) {
        let engine = try Engine(configuration: configuration, settings: settings, logger: logger)
        try engine.start()
        self.settings = settings
        self.logger = logger
        state = Mutex(State(configuration: configuration, current: engine))
    }

    /// The configuration in force.
    public var configuration: Configuration { state.withLock { $0.configuration } }
    /// The engine serving new connections.
    public var current: Engine { state.withLock { $0.current } }
    /// Engines of earlier configurations still running.
    public var drainingCount: Int { state.withLock { $0.draining.count } }
    /// Reloads so far.
    public var reloads: ReloadRecord { state.withLock { $0.reloads } }

    /// The configuration in force, the engine serving it and the reloads, read together.
    public func view() -> (configuration: Configuration, current: Engine, reloads: ReloadRecord) {
        state.withLock { ($0.configuration, $0.current, $0.reloads) }
    }

    /// A reload refused before it reached ``reload(_:)`` (the file did not validate).
    public func recordFailedReload() {
        state.withLock { $0.reloads.failed += 1; $0.reloads.lastSuccessful = false }
    }

    static func unixSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// Per-rule totals, for the rules named in `names` (default: those of the
    /// configuration in force, in its order): under each name, the current engine's,
    /// plus those of draining and ended earlier engines.
    public func counters(named names: [String]? = nil) -> [RuleCounters] {
        state.withLock { state in
            let names = names ?? state.current.plan.ruleNames
            var totals = Array(repeating: RuleCounters(), count: names.count)
            var index: [String: Int] = [:]
            for (i, name) in names.enumerated() { index[name] = i }
            for engine in [state.current] + state.draining {
                for (name, counters) in zip(engine.plan.ruleNames, engine.counters()) {
                    if let i = index[name] { totals[i] += counters }
                }
            }
            for (name, counters) in state.carried {
                if let i = index[name] { totals[i] += counters }
            }
            return totals
        }
    }

    /// Applies `configuration` (already validated, as `--check` does). On success the
    /// new engine serves; on failure nothing changed and the error says why.
    public func reload(_ configuration: Configuration) throws(EngineStartupError) -> ReloadSummary {
        do {
            return try apply(configuration)
        } catch {
            recordFailedReload()
            throw error
        }
    }

    private func apply(_ configuration: Configuration) throws(EngineStartupError) -> ReloadSummary {
        let (old, running) = state.withLock { ($0.current, $0.configuration) }
        var summary = Self.difference(running, configuration)
        var applied = configuration
        var engine: Engine
        do {
            engine = try Engine(configuration: configuration, settings: settings, logger: logger, inheriting: old)
        } catch {
            // New ports that cannot be bound: those rules are left out (or kept as they
            // run) and the rest applies; any other problem fails the reload.
            var failed: [String: EngineError] = [:]
            for problem in error.problems {
                guard case let .bind(rule, _, _, _) = problem else { throw error }
                if failed[rule] == nil { failed[rule] = problem }
            }
            applied = Self.without(Set(failed.keys), from: configuration, running: running)
            guard !applied.rules.isEmpty else { throw error }
            for rule in configuration.rules where failed[rule.name] != nil {
                let kept = applied.rules.contains { $0.name == rule.name }
                summary.failed.append((rule.name, failed[rule.name]!, kept))
            }
            summary = Self.difference(running, applied, failed: summary.failed)
            engine = try Engine(configuration: applied, settings: settings, logger: logger, inheriting: old)
        }
        try engine.start()
        var forced: [Engine] = [], cut: [Engine] = []
        state.withLock { state in
            state.draining.append(state.current)
            state.current = engine
            state.configuration = applied
            state.reloads.applied += 1
            state.reloads.lastSuccessful = true
            state.reloads.loadedUnixSeconds = Self.unixSeconds()
            let names = Set(applied.rules.map(\.name))
            state.carried = state.carried.filter { names.contains($0.key) }
            // Stopped engines still count under their rule names until they end.
            let retired = state.draining.filter { !$0.isStopping }
            forced = Array(retired.prefix(max(0, retired.count - Self.maxDrainingEngines)))
            cut = Array(state.draining.prefix(max(0, state.draining.count - Self.maxEngines)))
        }
        old.retire(for: engine)
        let drainMs = Engine.drainMs(applied)
        for engine in forced { engine.stop(drainMs: drainMs) }
        for engine in cut { engine.cut() }
        summary.forcedCuts = cut.count
        summary.forcedStops = forced.count
        summary.draining = drainingCount
        return summary
    }

    /// Joins the earlier engines that have ended and folds their totals into the rules
    /// of the same name. Cheap; call it now and then.
    public func reap() {
        let ended = state.withLock { $0.draining.filter(\.hasEnded) }
        guard !ended.isEmpty else { return }
        for engine in ended { engine.wait() }
        state.withLock { state in
            let names = Set(state.current.plan.ruleNames)
            for engine in ended {
                for (name, counters) in zip(engine.plan.ruleNames, engine.counters()) where names.contains(name) {
                    state.carried[name, default: RuleCounters()] += counters
                }
            }
            state.draining.removeAll { engine in ended.contains { $0 === engine } }
        }
    }

    /// Stops every engine: no new connections; open ones drain within the budget of the
    /// configuration in force.
    public func stop() {
        let (engines, drainMs) = state.withLock { ([$0.current] + $0.draining, Engine.drainMs($0.configuration)) }
        for engine in engines { engine.stop(drainMs: drainMs) }
    }

    /// Waits until every engine has ended.
    public func wait() {
        let engines = state.withLock { [$0.current] + $0.draining }
        for engine in engines { engine.wait() }
        reap()
    }

    /// The rules of `new` against those of `old`, by name.
    static func difference(_ old: Configuration, _ new: Configuration,
                           failed: [(rule: String, problem: EngineError, keptRunning: Bool)] = []) -> ReloadSummary {
        var summary = ReloadSummary()
        summary.failed = failed
        let before = Dictionary(old.rules.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let after = Set(new.rules.map(\.name))
        for rule in new.rules {
            switch before[rule.name] {
            case nil: summary.added.append(rule.name)
            case let previous? where previous == rule: summary.unchanged.append(rule.name)
            default: summary.changed.append(rule.name)
            }
        }
        summary.removed = old.rules.map(\.name).filter { !after.contains($0) }
        return summary
    }

    /// `new` without the rules named in `failed`; a failed rule that `running` has is
    /// kept as it runs, unless another rule of `new` now claims one of its ports.
    static func without(_ failed: Set<String>, from new: Configuration, running: Configuration) -> Configuration {
        let others = new.rules.filter { !failed.contains($0.name) }
        var rules: [Rule] = []
        for rule in new.rules {
            if !failed.contains(rule.name) { rules.append(rule); continue }
            guard let previous = running.rules.first(where: { $0.name == rule.name }) else { continue }
            let clash = others.contains { $0.proto == previous.proto && $0.listenPorts.overlaps(previous.listenPorts) }
            if !clash { rules.append(previous) }
        }
        return Configuration(global: new.global, defaults: new.defaults, stats: new.stats, rules: rules)
    }
}
