import ArgumentParser
import Glibc
import Logging
import PortunusConfig
import PortunusEngine
import PortunusResolver
import PortunusStats

/// `portunus-uring [--config PATH] [--check] ...`: the forwarder's command line.
struct PortunusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portunus-uring",
        abstract: "An io_uring TCP port forwarder, a drop-in for Portunus standalone.",
        discussion: "Exit codes: 0 clean exit or valid --check; 2 usage, I/O, parse or validation error; 1 runtime failure (bind failed, io_uring unavailable).",
        subcommands: [StatsCommand.self]
    )

    @Option(name: [.short, .long], help: "The TOML config file.")
    var config: String = "./portunus.toml"

    @Flag(help: "Validate the config, print 'ok' and exit 0, or print every error and exit 2. Binds nothing.")
    var check = false

    @Option(help: ArgumentHelp("Override [global] log_level: a level (error, warn, info, debug, trace) or a tracing-style filter such as portunus=debug,info or warn,portunus::rule=debug.", valueName: "FILTER"))
    var logLevel: String?

    @Option(help: "Override [global] log_format: json or pretty.")
    var logFormat: String?

    @Option(help: "Worker threads, one io_uring each (default: online CPUs).")
    var workers: Int?

    @Option(help: "Relay path: auto (buffers, then splice for streaming halves), buffers (recv/send on a provided buffer ring), or splice (pipes).")
    var relay: String = RelayMode.auto.rawValue

    @Option(name: .customLong("dns-server"), help: ArgumentHelp(
        "A DNS server for DNS-named targets, instead of those of /etc/resolv.conf (repeatable, tried in order).",
        valueName: "ADDR[:PORT]"))
    var dnsServers: [String] = []

    @Flag(help: "Do not serve the stats socket, whatever [stats] says.")
    var noStats = false

    @Option(help: ArgumentHelp("Serve the stats socket at PATH instead of [stats] socket_path.", valueName: "PATH"))
    var statsSocket: String?

    @Option(help: ArgumentHelp("Serve Prometheus metrics at http://ADDR/metrics instead of [metrics] listen (A.B.C.D:PORT or [IPv6]:PORT).",
                               valueName: "ADDR"))
    var metricsListen: String?

    @Flag(name: [.customShort("V"), .customLong("version")], help: "Print the version and exit.")
    var version = false

    func validate() throws {
        if let statsSocket, statsSocket.isEmpty || statsSocket.utf8.count > 107 {
            throw ValidationError("--stats-socket: a Unix socket path of 1 to 107 bytes is needed, got \(statsSocket.utf8.count)")
        }
        if let metricsListen, case .failure(let error) = ListenAddress.parse(metricsListen) { throw ValidationError("--metrics-listen: \(error)") }
        for server in dnsServers where DNSServer(server) == nil {
            throw ValidationError("--dns-server: \"\(server)\" is not ADDR[:PORT] (an IPv4 address, or an IPv6 address in brackets when a port follows: [::1]:53)")
        }
        // --log-format: "pretty" means lines for people, any other value JSON (Portunus).
        if let workers, !(1...1024).contains(workers) {
            throw ValidationError("--workers: \(workers) is not within 1...1024")
        }
        if RelayMode(rawValue: relay) == nil {
            throw ValidationError("--relay: \"\(relay)\" is not one of buffers, splice, auto")
        }
    }

    /// The engine settings the command line asks for.
    var engineSettings: EngineSettings {
        var settings = EngineSettings(workers: workers ?? EngineSettings().workers, relay: RelayMode(rawValue: relay)!)
        settings.dnsServers = dnsServers.map { DNSServer($0)! }
        return settings
    }

    func run() throws {
        if version {
            print("portunus-uring \(PortunusVersion.string)")
            return
        }
        let configuration: Configuration
        do {
            configuration = try ConfigLoader.load(path: config)
            // Everything start-up would refuse because of the file is refused here too,
            // so a file that passes --check fails later only for outside reasons: here,
            // listeners that cannot fit the open-file limit with the workers asked for.
            let plan = ForwardingPlan.compile(configuration)
            _ = try ResourceBudget.make(plan: plan, settings: engineSettings, maxConnections: configuration.global.maxConnections)
        } catch let error as ConfigError {
            Self.printError(error.description)
            throw ExitCode(2)
        } catch let error as EngineError {
            Self.printError(error.description)
            throw ExitCode(2)
        }
        if check {
            for warning in configuration.warnings { Self.printError(warning.description) }
            if let warning = commandLineFilterWarning { Self.printError(warning) }
            print("ok")
            return
        }
        let logger = makeLogger(configuration.global)
        for warning in configuration.warnings {
            logger.warning("\(warning.description)", metadata: ["event": "standalone.config_warning", "code": "\(warning.code)"])
        }
        if let warning = commandLineFilterWarning {
            logger.warning("\(warning)", metadata: ["event": "standalone.config_warning", "code": "validation.log_level_invalid"])
        }
        try serve(configuration, logger: logger)
    }

    /// --log-level given and not a filter: like an invalid `log_level`, a warning, and `warn`.
    private var commandLineFilterWarning: String? {
        guard let logLevel, LogFilter(logLevel) == nil else { return nil }
        return "warning[validation.log_level_invalid]: --log-level: \"\(logLevel)\" is not a log filter; running with \"warn\""
    }

    private func makeLogger(_ global: GlobalSettings) -> Logger {
        let filter = logLevel.map { LogFilter($0) ?? LogFilter(level: .warn) } ?? global.logFilter
        let format = logFormat.map { $0 == "pretty" ? LogFormat.pretty : .json } ?? global.logFormat
        let style: LogStyle = format == .pretty ? .pretty : .json
        return Logger(label: "portunus-uring") { _ in StderrLogHandler(style: style, filter: filter) }
    }

    private func serve(_ configuration: Configuration, logger: Logger) throws {
        // Blocked before any worker exists, so only the main thread ever sees them.
        Signals.block()
        let forwarder: Forwarder
        do {
            forwarder = try Forwarder(configuration: configuration, settings: engineSettings, logger: logger)
        } catch {
            Self.printError(Self.bindFailureSummary(error) + error.description)
            throw ExitCode(1)
        }
        // The stats socket before the "started" line: started means everything is up.
        let stats = startStats(configuration, forwarder, logger)
        let metrics = startMetrics(configuration, forwarder, logger)
        logStartup(configuration, forwarder.current.settings, logger)
        let notify = SystemdNotify(logger: logger)
        notify.ready(status: "forwarding: \(configuration.rules.count) rule(s), \(forwarder.current.settings.workers) worker(s)")
        // Portunus's reporter: once at start-up, then every 60 s, keeping its rhythm
        // whatever signals arrive in between.
        reportStats(forwarder, logger)
        let reportMs: Int64 = 60_000
        var nextReportMs = Self.monotonicMs() + reportMs
        while true {
            // While earlier configurations' engines drain, look for ended ones each second.
            let reportInMs = max(0, nextReportMs - Self.monotonicMs())
            let waitMs = forwarder.drainingCount > 0 ? min(reportInMs, 1000) : reportInMs
            let signal = Signals.wait(milliseconds: Int(waitMs))
            forwarder.reap()
            guard let signal else {
                if Self.monotonicMs() >= nextReportMs {
                    reportStats(forwarder, logger)
                    nextReportMs += reportMs
                }
                continue
            }
            switch signal {
            case SIGHUP:
                // systemd (Type=notify) waits between RELOADING=1 and READY=1; READY=1
                // follows a failed reload too: the running configuration still serves.
                notify.reloading()
                let outcome = reload(forwarder, stats: stats, logger: logger)
                notify.ready(status: outcome == .applied ? "forwarding: \(forwarder.configuration.rules.count) rule(s), reloaded"
                                                           : "forwarding: the last reload failed; running the previous configuration")
            case SIGUSR1:
                reportStats(forwarder, logger)
            case _ where Signals.ignored.contains(signal):
                logger.debug("signal ignored", metadata: ["event": "standalone.signal_ignored", "signal": "\(Signals.name(signal))"])
            default:
                notify.stopping(status: "stopping: draining open connections")
                logger.info("stopping: no new connections; draining open ones", metadata: [
                    "event": "shutdown.signal", "signal": "\(Signals.name(signal))",
                    "drain_secs": .stringConvertible(forwarder.configuration.global.shutdownDrain.components.seconds),
                ])
                forwarder.stop()
                forwarder.wait()
                stats?.stop()
                metrics?.stop()
                logCounters(forwarder, logger)
                return
            }
        }
    }

    /// The stats socket, unless turned off; a socket that cannot be set up is logged
    /// and the forwarder runs on without it (as Portunus).
    private func startStats(_ configuration: Configuration, _ forwarder: Forwarder, _ logger: Logger) -> StatsServer? {
        guard configuration.stats.enabled || statsSocket != nil, !noStats else { return nil }
        let names = configuration.rules.map(\.name)
        let documents = StatsDocuments(configuration: configuration) { forwarder.counters(named: names) }
        return StatsServer.start(path: statsSocket ?? configuration.stats.socketPath, documents: documents, logger: logger)
    }

    static func monotonicMs() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    /// Portunus's start-up failure shape, `error: N rule(s) failed to bind:` and one
    /// `- NAME (ID): CODE` per rule, before our lines naming each port; empty when no
    /// listen port failed.
    static func bindFailureSummary(_ error: EngineStartupError) -> String {
        var rules: [(name: String, code: String)] = []
        for case let .bind(rule, _, code, _) in error.problems where !rules.contains(where: { $0.name == rule }) {
            rules.append((rule, code))
        }
        guard !rules.isEmpty else { return "" }
        return "error: \(rules.count) rule(s) failed to bind:\n"
            + rules.map { "- \($0.name) (\(BLAKE3.ruleID($0.name))): \($0.code)\n" }.joined()
    }

    private func logStartup(_ configuration: Configuration, _ settings: EngineSettings, _ logger: Logger) {
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            let metadata: Logger.Metadata = [
                "event": "standalone.rlimit_nofile", "soft": .stringConvertible(UInt64(limit.rlim_cur)), "hard": .stringConvertible(UInt64(limit.rlim_max)),
                "max_connections": .stringConvertible((settings.connectionsPerWorker ?? 0) * settings.workers),
            ]
            logger.info("open-file limit", metadata: metadata)
            if limit.rlim_cur < 4096 {
                logger.warning("the open-file limit is low: each connection needs two descriptors; raise LimitNOFILE / ulimit -n",
                               metadata: metadata.merging(["event": "standalone.rlimit_nofile_low"]) { $1 })
            }
        }
        logger.info("started", metadata: [
            "event": "standalone.started", "label": "\(configuration.global.label ?? "")", "workers": .stringConvertible(settings.workers),
            "relay": "\(settings.relay.rawValue)", "rules": .stringConvertible(configuration.rules.count),
            "version": "\(PortunusVersion.string)",
        ])
        logRules(configuration.rules, logger)
    }

    /// `rule.activated`, one line per rule: at start-up, and for the rules a reload
    /// added or changed.
    func logRules(_ rules: [Rule], _ logger: Logger) {
        for rule in rules {
            let listen = rule.listenPorts.count == 1 ? "\(rule.listenPorts.lower)" : "\(rule.listenPorts.lower)-\(rule.listenPorts.upper)"
            let targets = rule.targets.map { target in
                let ports = target.ports.count == 1 ? "\(target.ports.lower)" : "\(target.ports.lower)-\(target.ports.upper)"
                let proxy = target.proxyProtocol.map { " (proxy_protocol \($0.rawValue))" } ?? ""
                return "\(target.host):\(ports)\(proxy)"
            }
            var metadata: Logger.Metadata = [
                "event": "rule.activated", "rule": "\(rule.name)", "rule_id": .stringConvertible(BLAKE3.ruleID(rule.name)),
                "protocol": "\(rule.proto.rawValue)", "listen": "\(listen)", "targets": "\(targets.joined(separator: ","))",
            ]
            if let accept = rule.acceptProxy { metadata["accept_proxy"] = "\(accept.rawValue)" }
            logger.info("rule", metadata: metadata)
        }
    }

    /// Portunus's `standalone.stats`: one line per rule with its field names, then ours.
    private func reportStats(_ forwarder: Forwarder, _ logger: Logger) {
        let names = forwarder.configuration.rules.map(\.name)
        for (name, c) in zip(names, forwarder.counters(named: names)) {
            let id = BLAKE3.ruleID(name)
            logger.info("stats", metadata: Self.counterFields(c).merging([
                "event": "standalone.stats", "rule": .stringConvertible(id), "rule_name": "\(name)",
                "in_bytes": .stringConvertible(c.bytesIn), "out_bytes": .stringConvertible(c.bytesOut),
                "active_conns": .stringConvertible(c.connectionsActive), "active_flows": .stringConvertible(c.flowsActive),
            ]) { $1 })
        }
    }

    /// The final counters, one line per rule (ours: `standalone.stopped`).
    private func logCounters(_ forwarder: Forwarder, _ logger: Logger) {
        let names = forwarder.configuration.rules.map(\.name)
        for (name, c) in zip(names, forwarder.counters(named: names)) {
            logger.info("stopped", metadata: Self.counterFields(c).merging(["event": "standalone.stopped", "rule": "\(name)"]) { $1 })
        }
    }

    private static func counterFields(_ c: RuleCounters) -> Logger.Metadata {
        func n(_ v: UInt64) -> Logger.Metadata.Value { .stringConvertible(v) }
        return [
            "bytes_in": n(c.bytesIn), "bytes_out": n(c.bytesOut),
            "conns_active": n(c.connectionsActive), "conns_total": n(c.connectionsTotal),
            "connect_failures": n(c.connectFailures), "prelude_failures": n(c.preludeFailures),
            "rejected": n(c.rejected), "spliced_halves": n(c.splicedHalves),
            "pipes_discarded": n(c.pipesDiscarded), "spilled_sends": n(c.spilledSends), "idle_closed": n(c.idleClosed),
            "dns_failures": n(c.dnsFailures), "target_failovers_total": n(c.targetFailovers),
            "datagrams_in": n(c.datagramsIn), "datagrams_out": n(c.datagramsOut), "flows_active": n(c.flowsActive),
            "icmp_evict": n(c.icmpEvict), "emsgsize": n(c.emsgsize), "wouldblock": n(c.wouldblock),
            "flows_dropped_overflow": n(c.flowsDroppedOverflow), "flows_pending_drops": n(c.flowsPendingDrops),
            "send_dropped": n(c.sendDropped), "proxy_in_rejected": n(c.proxyInRejected),
        ]
    }

    static func printError(_ text: String) {
        var line = text
        if !line.hasSuffix("\n") { line += "\n" }
        var bytes = Array(line.utf8)
        bytes.withUnsafeMutableBytes { _ = write(2, $0.baseAddress, $0.count) }
    }
}
