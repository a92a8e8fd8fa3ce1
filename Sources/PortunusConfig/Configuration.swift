// The validated, immutable configuration of portunus-uring (SPEC.md §2).
//
// Every value here has already passed validation: the engine and the CLI may
// rely on the invariants documented on each type and never re-check them.
// `ConfigLoader` is the only producer of a `Configuration` from a file.

/// A fully validated configuration file: the TOML sections, with
/// `[defaults]` already folded into every rule.
public struct Configuration: Sendable, Equatable {
    /// `[global]`: process-wide settings.
    public let global: GlobalSettings
    /// `[defaults]`: the values rules inherited. Kept so the start-up log and
    /// a SIGHUP reload can show what a rule did not set itself.
    public let defaults: RuleDefaults
    /// `[stats]`: the stats socket.
    public let stats: StatsSettings
    /// `[metrics]` (an addition to the Portunus schema): the Prometheus endpoint, off by default.
    public let metrics: MetricsSettings
    /// `[[rule]]` entries in file order; never empty, names unique, no two
    /// rules of the same protocol share a listen port.
    public let rules: [Rule]
    /// What loading noticed without refusing the file (`--check` prints them as
    /// `warning[CODE]`, start-up logs them).
    public private(set) var warnings: [ConfigDiagnostic] = []

    func with(warnings: [ConfigDiagnostic]) -> Configuration {
        var copy = self
        copy.warnings = warnings
        return copy
    }

    /// Creates a configuration from already-validated parts (for tests and
    /// embedders; files go through `ConfigLoader`).
    public init(global: GlobalSettings = GlobalSettings(),
                defaults: RuleDefaults = RuleDefaults(),
                stats: StatsSettings = StatsSettings(),
                metrics: MetricsSettings = MetricsSettings(),
                rules: [Rule]) {
        self.global = global
        self.defaults = defaults
        self.stats = stats
        self.metrics = metrics
        self.rules = rules
    }
}

/// `[global]`: settings that apply to the whole process.
public struct GlobalSettings: Sendable, Equatable {
    /// `label`: free text printed in the start-up log line; nil when absent.
    public let label: String?
    /// `log_level`: a level or a tracing-style filter (``LogFilter``); default `warn`.
    public let logFilter: LogFilter
    /// `log_format`: default `.json`.
    public let logFormat: LogFormat
    /// `shutdown_drain_secs`: how long open TCP connections may finish after
    /// SIGTERM/SIGINT. Default 30 s; within 0...``Limits/maxSeconds`` (0 closes them at once).
    public let shutdownDrain: Duration
    /// `max_connections` (an addition to the Portunus schema): cap on concurrent TCP
    /// connections, within 1...``Limits/maxConnections``; nil when absent (then the
    /// open-file limit decides).
    public let maxConnections: Int?

    /// Creates global settings; every argument defaults to the spec default.
    public init(label: String? = nil,
                logFilter: LogFilter = LogFilter(level: .warn),
                logFormat: LogFormat = .json,
                shutdownDrain: Duration = .seconds(30),
                maxConnections: Int? = nil) {
        self.label = label
        self.logFilter = logFilter
        self.logFormat = logFormat
        self.shutdownDrain = shutdownDrain
        self.maxConnections = maxConnections
    }
}

/// `[defaults]`: values a rule inherits for every key it omits.
public struct RuleDefaults: Sendable, Equatable {
    /// `protocol`: default `.tcp`.
    public let proto: TransportProtocol
    /// `udp_max_flows`: default 1024; always >= 1.
    public let udpMaxFlows: Int
    /// `udp_flow_idle_secs`: default 60 s; always >= 1 s.
    public let udpFlowIdle: Duration
    /// `prefer_ipv6`: default false.
    public let preferIPv6: Bool
    /// `idle_timeout_secs` (an addition): nil when absent or 0 (never, as Portunus).
    public let idleTimeout: Duration?
    /// `accept_proxy` (an addition): the inbound PROXY header the TCP rules that omit
    /// the key require; nil when absent. UDP rules never inherit it (PROXY on the way
    /// in is TCP only), and it is refused when `protocol` here is `"udp"`.
    public let acceptProxy: AcceptProxy?
    /// `accept_proxy_timeout_secs` (an addition): default 5 s; within
    /// 1...``Limits/maxAcceptProxyTimeoutSeconds`` s.
    public let acceptProxyTimeout: Duration

    /// Creates rule defaults; every argument defaults to the spec default.
    public init(proto: TransportProtocol = .tcp,
                udpMaxFlows: Int = 1024,
                udpFlowIdle: Duration = .seconds(60),
                preferIPv6: Bool = false,
                idleTimeout: Duration? = nil,
                acceptProxy: AcceptProxy? = nil,
                acceptProxyTimeout: Duration = Rule.defaultAcceptProxyTimeout) {
        self.proto = proto
        self.udpMaxFlows = udpMaxFlows
        self.udpFlowIdle = udpFlowIdle
        self.preferIPv6 = preferIPv6
        self.idleTimeout = idleTimeout
        self.acceptProxy = acceptProxy
        self.acceptProxyTimeout = acceptProxyTimeout
    }
}

/// `[stats]`: the Unix stats socket (SPEC.md §8).
public struct StatsSettings: Sendable, Equatable {
    /// `enabled`: default true.
    public let enabled: Bool
    /// `socket_path`: default `/run/portunus/standalone.sock`. When enabled it
    /// is non-empty and fits `sockaddr_un.sun_path`.
    public let socketPath: String
    /// `refresh_ms`: snapshot period, default 1000 ms; within 250...5000 ms
    /// when enabled (a disabled section keeps whatever the file said).
    public let refresh: Duration

    /// The path Portunus standalone uses, so `stats` finds either daemon.
    public static let defaultSocketPath = "/run/portunus/standalone.sock"

    /// Creates stats settings; every argument defaults to the spec default.
    public init(enabled: Bool = true,
                socketPath: String = StatsSettings.defaultSocketPath,
                refresh: Duration = .milliseconds(1000)) {
        self.enabled = enabled
        self.socketPath = socketPath
        self.refresh = refresh
    }
}

/// `[metrics]` (an addition to the Portunus schema): the Prometheus text endpoint.
public struct MetricsSettings: Sendable, Equatable {
    /// `listen`: the address and port the endpoint serves `GET /metrics` on; nil
    /// (the default, and what every Portunus file gives) when there is no endpoint.
    public let listen: ListenAddress?

    /// Creates metrics settings; the default serves no endpoint.
    public init(listen: ListenAddress? = nil) {
        self.listen = listen
    }
}

/// The ranges numeric keys must lie in: each is one the runtime honours without
/// overflow (a duration in milliseconds, a count of slots).
public enum Limits {
    /// Longest duration any `*_secs` key may give: one year.
    public static let maxSeconds = 31_536_000
    /// Largest `max_connections`: 2^24 (two sockets each; far above any fd limit).
    public static let maxConnections = 1 << 24
    /// Largest `udp_max_flows`.
    public static let maxUDPFlows = 1 << 24
    /// Longest `accept_proxy_timeout_secs`: one hour. The header is the first bytes a
    /// client sends; a longer wait only holds a connection slot for a client that sends none.
    public static let maxAcceptProxyTimeoutSeconds = 3600
}

/// `log_level`: the least severe level that is still logged.
public enum LogLevel: String, Sendable, CaseIterable {
    case error, warn, info, debug, trace
}

/// `log_format`: JSON lines for machines, `pretty` for people.
public enum LogFormat: String, Sendable, CaseIterable {
    case json, pretty
}

/// `protocol` of a rule.
public enum TransportProtocol: String, Sendable, CaseIterable {
    case tcp, udp
}

/// `accept_proxy` of a rule (an addition to the Portunus schema, SPEC.md §9): the
/// PROXY header every client connection must start with. The header's addresses
/// replace the peer's as the client's. TCP only.
public enum AcceptProxy: String, Sendable, Equatable, CaseIterable {
    /// Only the text header, `PROXY TCP4 ...\r\n`.
    case v1
    /// Only the binary header (12-byte signature), TLVs included.
    case v2
    /// Either version, told apart by the first bytes.
    case any
}

/// `proxy_protocol` of a target: which PROXY prelude to send (SPEC.md §4).
public enum ProxyProtocolVersion: String, Sendable, CaseIterable {
    /// Text header: `PROXY TCP4 src dst sport dport\r\n`.
    case v1
    /// Binary header: 12-byte signature plus address block.
    case v2
}
