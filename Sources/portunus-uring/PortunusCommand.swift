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

    @Option(help: "Override [global] log_level: error, warn, info, debug, trace.")
    var logLevel: String?

    @Option(help: "Override [global] log_format: json or pretty.")
    var logFormat: String?

    @Option(help: "Worker threads, one io_uring each (default: online CPUs).")
    var workers: Int?

    @Option(help: "Relay path: buffers (recv/send on a provided buffer ring), splice (pipes), or auto (buffers, then splice for streaming halves).")
    var relay: String = RelayMode.buffers.rawValue

    @Option(name: .customLong("dns-server"), help: ArgumentHelp(
        "A DNS server for DNS-named targets, instead of those of /etc/resolv.conf (repeatable, tried in order).",
        valueName: "ADDR[:PORT]"))
    var dnsServers: [String] = []

    @Flag(help: "Do not serve the stats socket, whatever [stats] says.")
    var noStats = false

    @Option(help: ArgumentHelp("Serve the stats socket at PATH instead of [stats] socket_path.", valueName: "PATH"))
    var statsSocket: String?

    @Flag(name: [.customShort("V"), .customLong("version")], help: "Print the version and exit.")
    var version = false

    func validate() throws {
        if let statsSocket, statsSocket.isEmpty || statsSocket.utf8.count > 107 {
            throw ValidationError("--stats-socket: a Unix socket path of 1 to 107 bytes is needed, got \(statsSocket.utf8.count)")
        }
        for server in dnsServers where DNSServer(server) == nil {
            throw ValidationError("--dns-server: \"\(server)\" is not ADDR[:PORT] (an IPv4 address, or an IPv6 address in brackets when a port follows: [::1]:53)")
        }
        if let logLevel, LogLevel(rawValue: logLevel) == nil {
            throw ValidationError("--log-level: \"\(logLevel)\" is not one of error, warn, info, debug, trace")
        }
        if let logFormat, LogFormat(rawValue: logFormat) == nil {
            throw ValidationError("--log-format: \"\(logFormat)\" is not one of json, pretty")
        }
        if let workers, !(1...1024).contains(workers) {
            throw ValidationError("--workers: \(workers) is not within 1...1024")
        }
        if RelayMode(rawValue: relay) == nil {
            throw ValidationError("--relay: \"\(relay)\" is not one of buffers, splice, auto")
        }
    }

    /// The engine settings the command line asks for.
    private var engineSettings: EngineSettings {
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
            print("ok")
            return
        }
        let logger = makeLogger(configuration.global)
        try serve(configuration, logger: logger)
    }

    private func makeLogger(_ global: GlobalSettings) -> Logger {
        let level = LogLevel(rawValue: logLevel ?? "") ?? global.logLevel
        let style: LogStyle = (LogFormat(rawValue: logFormat ?? "") ?? global.logFormat) == .pretty ? .pretty : .json
        let swiftLogLevel: Logger.Level = switch level {
        case .error: .error
        case .warn: .warning
        case .info: .info
        case .debug: .debug
        case .trace: .trace
        }
        return Logger(label: "portunus-uring") { label in
            StderrLogHandler(label: label, style: style, logLevel: swiftLogLevel)
        }
    }

    private func serve(_ configuration: Configuration, logger: Logger) throws {
        // Blocked before any worker exists, so only the main thread ever sees them.
        Signals.block()
        let settings = engineSettings
        let engine: Engine
        do {
            engine = try Engine(configuration: configuration, settings: settings, logger: logger)
            try engine.start()
        } catch {
            Self.printError(error.description)
            throw ExitCode(1)
        }
        logStartup(configuration, settings, logger)
        let stats = startStats(configuration, engine, logger)
        // The 60 s report keeps its rhythm whatever signals arrive in between.
        let reportMs: Int64 = 60_000
        var nextReportMs = Self.monotonicMs() + reportMs
        while true {
            guard let signal = Signals.wait(milliseconds: Int(max(0, nextReportMs - Self.monotonicMs()))) else {
                logCounters(engine, logger, message: "stats")
                nextReportMs += reportMs
                continue
            }
            switch signal {
            case SIGHUP:
                logger.warning("SIGHUP received: configuration reload is not supported by this version yet; still running with the loaded file")
            case SIGUSR1:
                logCounters(engine, logger, message: "stats")
            case _ where Signals.ignored.contains(signal):
                logger.debug("signal ignored", metadata: ["signal": "\(Signals.name(signal))"])
            default:
                logger.info("stopping: no new connections; draining open ones", metadata: [
                    "signal": "\(Signals.name(signal))", "drain_secs": "\(configuration.global.shutdownDrain.components.seconds)",
                ])
                engine.stop()
                engine.wait()
                stats?.stop()
                logCounters(engine, logger, message: "stopped")
                return
            }
        }
    }

    /// The stats socket, unless turned off; a socket that cannot be set up is logged
    /// and the forwarder runs on without it (as Portunus).
    private func startStats(_ configuration: Configuration, _ engine: Engine, _ logger: Logger) -> StatsServer? {
        guard configuration.stats.enabled || statsSocket != nil, !noStats else { return nil }
        let documents = StatsDocuments(configuration: configuration) { engine.counters() }
        return StatsServer.start(path: statsSocket ?? configuration.stats.socketPath, documents: documents, logger: logger)
    }

    private static func monotonicMs() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    private func logStartup(_ configuration: Configuration, _ settings: EngineSettings, _ logger: Logger) {
        logger.info("started", metadata: [
            "label": "\(configuration.global.label ?? "")", "workers": "\(settings.workers)",
            "relay": "\(settings.relay.rawValue)", "rules": "\(configuration.rules.count)",
        ])
        for rule in configuration.rules {
            let listen = rule.listenPorts.count == 1 ? "\(rule.listenPorts.lower)" : "\(rule.listenPorts.lower)-\(rule.listenPorts.upper)"
            let targets = rule.targets.map { target in
                let ports = target.ports.count == 1 ? "\(target.ports.lower)" : "\(target.ports.lower)-\(target.ports.upper)"
                let proxy = target.proxyProtocol.map { " (proxy_protocol \($0.rawValue))" } ?? ""
                return "\(target.host):\(ports)\(proxy)"
            }
            logger.info("rule", metadata: [
                "rule": "\(rule.name)", "protocol": "\(rule.proto.rawValue)", "listen": "\(listen)",
                "targets": "\(targets.joined(separator: ","))",
            ])
        }
    }

    private func logCounters(_ engine: Engine, _ logger: Logger, message: Logger.Message) {
        for (name, c) in zip(engine.plan.ruleNames, engine.counters()) {
            logger.info(message, metadata: [
                "rule": "\(name)", "bytes_in": "\(c.bytesIn)", "bytes_out": "\(c.bytesOut)",
                "conns_active": "\(c.connectionsActive)", "conns_total": "\(c.connectionsTotal)",
                "connect_failures": "\(c.connectFailures)", "prelude_failures": "\(c.preludeFailures)",
                "rejected": "\(c.rejected)", "spliced_halves": "\(c.splicedHalves)",
                "pipes_discarded": "\(c.pipesDiscarded)", "spilled_sends": "\(c.spilledSends)", "idle_closed": "\(c.idleClosed)",
                "dns_failures": "\(c.dnsFailures)", "target_failovers_total": "\(c.targetFailovers)",
                "datagrams_in": "\(c.datagramsIn)", "datagrams_out": "\(c.datagramsOut)", "flows_active": "\(c.flowsActive)",
                "icmp_evict": "\(c.icmpEvict)", "emsgsize": "\(c.emsgsize)", "wouldblock": "\(c.wouldblock)",
                "flows_dropped_overflow": "\(c.flowsDroppedOverflow)", "flows_pending_drops": "\(c.flowsPendingDrops)",
            ])
        }
    }

    static func printError(_ text: String) {
        var line = text
        if !line.hasSuffix("\n") { line += "\n" }
        var bytes = Array(line.utf8)
        bytes.withUnsafeMutableBytes { _ = write(2, $0.baseAddress, $0.count) }
    }
}
