import PortunusEngine
import PortunusResolver

/// Everything the Prometheus endpoint shows, taken at scrape time: the interface between
/// the forwarder (which builds one from its running engine and the configuration in
/// force) and the exporter (which turns it into the text format). A value: building one
/// reads the engine's counters (relaxed atomic loads) and touches nothing else, so a
/// reload can hand over a snapshot of whatever engine and file are current.
public struct MetricsSnapshot: Sendable {
    /// One rule's totals, summed over the workers.
    public struct Rule: Sendable {
        /// The rule's `name` (unique in a file): the `rule` label.
        public var name: String
        /// `"tcp"` or `"udp"`: the `protocol` label.
        public var proto: String
        public var counters: RuleCounters

        public init(name: String, proto: String, counters: RuleCounters) {
            self.name = name
            self.proto = proto
            self.counters = counters
        }
    }

    /// One target of a rule and its health.
    public struct Target: Sendable {
        /// The rule's name.
        public var rule: String
        /// `host:port` as the file writes it (`[v6]:port` for IPv6): the `target` label.
        public var target: String
        /// Healthy (true) or Failed (false), as the dialler sees it (SPEC.md §5).
        public var up: Bool

        public init(rule: String, target: String, up: Bool) {
            self.rule = rule
            self.target = target
            self.up = up
        }
    }

    public var rules: [Rule]
    /// A rule's target may appear more than once (one entry per listen port of a range
    /// dialling the same `host:port`): the exporter shows it up only when every entry is.
    public var targets: [Target]
    /// The DNS resolver's figures; nil when no target is named by DNS (no resolver runs).
    public var dns: ResolverFigures?
    /// Successful configuration reloads since start.
    public var reloads: UInt64
    /// Reloads refused because the file was invalid (the previous configuration stays).
    public var reloadFailures: UInt64
    /// Whether the last reload (if any) succeeded; true before the first.
    public var lastReloadSuccessful: Bool
    /// When the configuration in force was loaded, in seconds since the Unix epoch.
    public var configLoadedUnixSeconds: Double

    public init(rules: [Rule], targets: [Target], dns: ResolverFigures?, reloads: UInt64, reloadFailures: UInt64,
                lastReloadSuccessful: Bool, configLoadedUnixSeconds: Double) {
        self.rules = rules
        self.targets = targets
        self.dns = dns
        self.reloads = reloads
        self.reloadFailures = reloadFailures
        self.lastReloadSuccessful = lastReloadSuccessful
        self.configLoadedUnixSeconds = configLoadedUnixSeconds
    }
}
