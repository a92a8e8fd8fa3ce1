// TOML document -> Configuration: the top level and the settings sections. Rules are in ConfigParser+Rules.swift, their targets in
// ConfigParser+Targets.swift, checks across rules in ConfigParser+Overlap.swift.

/// One validation pass over a parsed TOML document. Every problem goes to
/// `sink`; `parse` returns a configuration only when there were none.
struct ConfigParser {
    let sink = DiagnosticCollector()

    /// Longest path `bind(2)` takes for an AF_UNIX socket: `sun_path` is 108
    /// bytes including the terminating NUL on Linux (unix(7)).
    static let maxSocketPathBytes = 107

    func parse(_ root: TOMLTable) -> Configuration? {
        let top = TableReader(table: root, scope: .topLevel, sink: sink)
        let global = parseGlobal(section(top, "global", place: "[global]"))
        let defaults = parseDefaults(section(top, "defaults", place: "[defaults]"))
        let stats = parseStats(section(top, "stats", place: "[stats]"))
        let metrics = parseMetrics(section(top, "metrics", place: "[metrics]"))
        let drafts = parseRules(top, defaults: defaults)
        checkListenOverlaps(drafts)
        top.reportUnknownKeys(known: ["global", "defaults", "stats", "metrics", "rule"])
        guard sink.count == 0 else { return nil }
        return Configuration(global: global, defaults: defaults.settings, stats: stats, metrics: metrics,
                             rules: drafts.compactMap(\.rule))
    }

    /// The reader for `[name]`, or nil when the section is absent or
    /// (reported) not a table.
    private func section(_ top: TableReader, _ name: String, place: String) -> TableReader? {
        guard let value = top.value(name) else { return nil }
        guard let table = value.table else {
            top.wrongType(name, expected: "a table (\(place))", found: value, hint: nil)
            return nil
        }
        return TableReader(table: table, scope: Scope(rule: nil, keyPrefix: name + ".", place: place),
                           sink: sink)
    }

    private func parseGlobal(_ reader: TableReader?) -> GlobalSettings {
        let fallback = GlobalSettings()
        guard let reader else { return fallback }
        defer { reader.reportUnknownKeys(known: ["label", "log_level", "log_format", "shutdown_drain_secs", "max_connections"]) }
        // Read in schema order so diagnostics come out in the order the spec lists the keys.
        let label = reader.string("label")
        var filter = fallback.logFilter
        if let text = reader.string("log_level") {
            if let parsed = LogFilter(text) {
                filter = parsed
            } else {
                reader.sink.warn(ConfigDiagnostic.Code.logLevelInvalid, reader.scope, key: "log_level",
                                 "\(quoted(text)) is not a log filter (a level such as \"info\", or directives such as"
                                 + " \"portunus=debug,info\"); the forwarder runs with \"warn\", as Portunus does")
            }
        }
        let format: LogFormat? = reader.choice("log_format", code: ConfigDiagnostic.Code.logFormatInvalid)
        let drainSecs = reader.integer("shutdown_drain_secs", in: 0...Limits.maxSeconds, meaning: "shutdown_drain_secs")
        let maxConnections = reader.integer("max_connections", in: 1...Limits.maxConnections, meaning: "max_connections")
        return GlobalSettings(label: label, logFilter: filter, logFormat: format ?? fallback.logFormat,
                              shutdownDrain: drainSecs.map { .seconds($0) } ?? fallback.shutdownDrain,
                              maxConnections: maxConnections)
    }

    /// `[defaults]` plus whether its protocol is usable: when
    /// `defaults.protocol` is invalid, rules that inherit it have no known
    /// protocol, and protocol-dependent checks on them are skipped rather
    /// than run against a guess.
    struct Defaults {
        var settings = RuleDefaults()
        var proto: TransportProtocol? = .tcp
    }

    static let defaultsKeys: Set<String> = [
        "protocol", "udp_max_flows", "udp_flow_idle_secs", "prefer_ipv6", "idle_timeout_secs",
        "accept_proxy", "accept_proxy_timeout_secs",
    ]

    private func parseDefaults(_ reader: TableReader?) -> Defaults {
        var result = Defaults()
        guard let reader else { return result }
        defer { reader.reportUnknownKeys(known: ConfigParser.defaultsKeys) }
        let fallback = result.settings
        if reader.has("protocol") {
            result.proto = reader.choice("protocol", code: ConfigDiagnostic.Code.protocolUnknown)
        }
        let flows = reader.integer("udp_max_flows", in: 0...Limits.maxUDPFlows, meaning: "udp_max_flows").flatMap { $0 == 0 ? nil : $0 }
        let idleSecs = reader.integer("udp_flow_idle_secs", in: 0...Limits.maxSeconds, meaning: "udp_flow_idle_secs").flatMap { $0 == 0 ? nil : $0 }
        let preferIPv6 = reader.bool("prefer_ipv6")
        let idleTimeout = reader.integer("idle_timeout_secs", in: 0...Limits.maxSeconds, meaning: "idle_timeout_secs")
        // A [defaults] that is UDP and accepts PROXY describes a rule that cannot exist;
        // with an unknown protocol the value is still judged.
        let acceptProxy = parseAcceptProxy(reader, proto: result.proto,
                                           onUDP: "[defaults] has protocol = \"udp\"; set accept_proxy on the TCP rules instead")
        let acceptProxyTimeout = parseAcceptProxyTimeout(reader)
        result.settings = RuleDefaults(
            proto: result.proto ?? fallback.proto,
            udpMaxFlows: flows ?? fallback.udpMaxFlows,
            udpFlowIdle: idleSecs.map { .seconds($0) } ?? fallback.udpFlowIdle,
            preferIPv6: preferIPv6 ?? fallback.preferIPv6,
            idleTimeout: idleTimeout.flatMap { $0 == 0 ? nil : .seconds($0) },
            acceptProxy: acceptProxy,
            acceptProxyTimeout: acceptProxyTimeout.map { .seconds($0) } ?? fallback.acceptProxyTimeout)
        return result
    }

    private func parseStats(_ reader: TableReader?) -> StatsSettings {
        let fallback = StatsSettings()
        guard let reader else { return fallback }
        defer { reader.reportUnknownKeys(known: ["enabled", "socket_path", "refresh_ms"]) }
        let enabled = reader.bool("enabled") ?? fallback.enabled
        let path = reader.string("socket_path") ?? fallback.socketPath
        let refreshMs = reader.integer("refresh_ms")
        // A disabled stats section is never used, so its values are kept as
        // written: turning stats off must not require fixing them first.
        if enabled, let refreshMs, !(250...5000).contains(refreshMs) {
            reader.sink.report(ConfigDiagnostic.Code.refreshMsOutOfRange, reader.scope, key: "refresh_ms",
                               "\(refreshMs) is out of range: refresh_ms must be within 250...5000")
        }
        if enabled, path.isEmpty || path.utf8.count > ConfigParser.maxSocketPathBytes {
            reader.sink.report(ConfigDiagnostic.Code.valueOutOfRange, reader.scope, key: "socket_path",
                               "socket_path must be 1 to \(ConfigParser.maxSocketPathBytes) bytes "
                                   + "(AF_UNIX limit), found \(path.utf8.count)")
        }
        return StatsSettings(enabled: enabled, socketPath: path,
                             refresh: refreshMs.map { .milliseconds($0) } ?? fallback.refresh)
    }

    /// `[metrics]` (an addition): `listen` is checked where it is written, so the
    /// diagnostic carries its line and column.
    private func parseMetrics(_ reader: TableReader?) -> MetricsSettings {
        guard let reader else { return MetricsSettings() }
        defer { reader.reportUnknownKeys(known: ["listen"]) }
        guard let text = reader.string("listen", hint: "write listen = \"127.0.0.1:9300\"") else { return MetricsSettings() }
        switch ListenAddress.parse(text) {
        case .success(let address):
            return MetricsSettings(listen: address)
        case .failure(let error):
            reader.sink.report(ConfigDiagnostic.Code.metricsListenInvalid, reader.scope, key: "listen",
                               at: reader.table.position(of: "listen"), error.message)
            return MetricsSettings()
        }
    }
}
