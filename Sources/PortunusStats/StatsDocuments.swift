import Glibc
import PortunusConfig
import PortunusEngine

/// The version `-V` prints and the stats hello carries as `daemon_version`.
public enum PortunusVersion {
    public static let string = "0.1.0"
}

/// The two documents of the stats socket (PORTUNUS_COMPAT.md): the hello, fixed at
/// start-up, and a snapshot of the counters, built on demand. Field names, order and
/// types are Portunus's, so its `stats` client and operators' jq scripts read ours;
/// counters Portunus does not have go under a key of their own (`uring`).
public final class StatsDocuments: Sendable {
    /// Rule ids as Portunus writes them: BLAKE3(name)'s first 8 bytes, little-endian, in decimal.
    public let ruleIDs: [String]
    public let refreshMs: UInt64
    public let startedAtMs: UInt64
    private let startedMonotonicMs: UInt64
    private let helloText: String
    private let counters: @Sendable () -> [RuleCounters]

    /// `counters` returns the rules' totals in `configuration.rules` order; it is called
    /// from the stats thread and must only read (the engine's are relaxed atomic loads).
    /// `replacing`: the documents a reload replaces, whose start time these keep.
    public init(configuration: Configuration, replacing previous: StatsDocuments? = nil,
                counters: @escaping @Sendable () -> [RuleCounters]) {
        ruleIDs = configuration.rules.map { String(BLAKE3.ruleID($0.name)) }
        // Validated to 250...5000 when [stats] is enabled; a disabled section keeps what
        // the file said, and --stats-socket may serve it anyway: held to the same range.
        let (seconds, attoseconds) = configuration.stats.refresh.components
        refreshMs = UInt64(min(max(seconds * 1000 + attoseconds / 1_000_000_000_000_000, 250), 5000))
        startedAtMs = previous?.startedAtMs ?? Self.wallClockMs()
        startedMonotonicMs = previous?.startedMonotonicMs ?? Self.monotonicMs()
        self.counters = counters
        let rules: [JSON] = zip(configuration.rules, ruleIDs).map { rule, id in
            let listen = rule.listenPorts.count == 1 ? "\(rule.listenPorts.lower)" : "\(rule.listenPorts.lower)-\(rule.listenPorts.upper)"
            // In the order the file lists them (Rule keeps them in dial order).
            let targets: [JSON] = rule.targets.sorted { $0.fileIndex < $1.fileIndex }.map { target in
                .object([
                    ("host", .string(Self.hostText(target.host))),
                    ("port", .int(target.ports.lower)),
                    ("priority", .int(target.priority)),
                    ("proxy_protocol", target.proxyProtocol.map { .string($0.rawValue) } ?? .null),
                ])
            }
            return .object([
                ("id", .string(id)),
                ("name", .string(rule.name)),
                ("proto", .string(rule.proto.rawValue)),
                ("listen", .string(listen)),
                ("targets", .array(targets)),
                ("splice_capable", .bool(rule.proto == .tcp)),
                ("udp_max_flows", rule.proto == .udp ? .int(rule.udpMaxFlows) : .null),
                // Ours (Portunus's client ignores keys it does not know).
                ("accept_proxy", rule.acceptProxy.map { .string($0.rawValue) } ?? .null),
            ])
        }
        helloText = JSON.object([
            ("v", .int(1)),
            ("daemon_version", .string(PortunusVersion.string)),
            ("daemon_started_at_ms", .int(startedAtMs)),
            ("refresh_ms", .int(refreshMs)),
            ("rules", .array(rules)),
        ]).compact
    }

    /// The hello as one line, without its newline.
    public var hello: String { helloText }

    /// A snapshot numbered `seq`, as one line without its newline.
    public func snapshot(seq: UInt64) -> String {
        let totals = counters()
        let rules: [JSON] = zip(ruleIDs, totals).map { id, c in
            .object([
                ("id", .string(id)),
                ("in", .int(c.bytesIn)),
                ("out", .int(c.bytesOut)),
                ("conns_active", .int(c.connectionsActive)),
                ("conns_total", .int(c.connectionsTotal)),
                ("datagrams_in", .int(c.datagramsIn)),
                ("datagrams_out", .int(c.datagramsOut)),
                ("flows_active", .int(c.flowsActive)),
                ("target_failovers_total", .int(c.targetFailovers)),
                ("err", .object([
                    // A bind failure stops start-up here (exit 1), so no running rule has one.
                    ("port_in_use", .int(0)),
                    ("upstream_connect_failed", .int(c.connectFailures)),
                    ("icmp_evict", .int(c.icmpEvict)),
                    ("emsgsize", .int(c.emsgsize)),
                    ("wouldblock", .int(c.wouldblock)),
                    // Portunus's hand-off queue to its flow task; flows are made in place here.
                    ("addflow_dropped", .int(0)),
                    ("flows_pending_drops", .int(c.flowsPendingDrops)),
                    // No bandwidth limits in this program's schema.
                    ("bandwidth_dropped_in", .int(0)),
                    ("bandwidth_dropped_out", .int(0)),
                    ("send_dropped", .int(c.sendDropped)),
                    ("dns_failures", .int(c.dnsFailures)),
                    ("flows_dropped_overflow", .int(c.flowsDroppedOverflow)),
                ])),
                ("uring", .object([
                    ("rejected", .int(c.rejected)),
                    ("prelude_failures", .int(c.preludeFailures)),
                    ("idle_closed", .int(c.idleClosed)),
                    ("spliced_halves", .int(c.splicedHalves)),
                    ("pipes_discarded", .int(c.pipesDiscarded)),
                    ("spilled_sends", .int(c.spilledSends)),
                    ("proxy_in_rejected", .int(c.proxyInRejected)),
                ])),
            ])
        }
        let process = ProcessFigures.read()
        return JSON.object([
            ("t_ms", .int(Self.wallClockMs())),
            ("uptime_ms", .int(Self.monotonicMs() &- startedMonotonicMs)),
            ("seq", .int(seq)),
            ("process", .object([
                ("fd_open", process.fdOpen.map { .int($0) } ?? .null),
                ("fd_limit", process.fdLimit.map { .int($0) } ?? .null),
                ("rss_bytes", process.rssBytes.map { .int($0) } ?? .null),
            ])),
            ("r", .array(rules)),
        ]).compact
    }

    /// IPv6 without brackets: the hello has the port in a field of its own.
    static func hostText(_ host: TargetHost) -> String {
        switch host {
        case let .ipv6(address): address.description
        default: host.description
        }
    }

    static func wallClockMs() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1000 + UInt64(now.tv_nsec) / 1_000_000
    }

    static func monotonicMs() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1000 + UInt64(now.tv_nsec) / 1_000_000
    }
}

/// The process's figures, read from /proc when asked (a directory listing and small
/// reads, on the stats or metrics thread): the stats snapshot's `process` and the
/// metrics' `process_` gauges. nil where /proc cannot be read.
public struct ProcessFigures: Sendable {
    public var fdOpen: UInt64?
    public var fdLimit: UInt64?
    public var rssBytes: UInt64?
    public var virtualBytes: UInt64?

    public static func read() -> ProcessFigures {
        var figures = ProcessFigures()
        if let dir = opendir("/proc/self/fd") {
            var count: UInt64 = 0
            while let entry = readdir(dir) {
                if entry.pointee.d_name.0 != CChar(UInt8(ascii: ".")) { count += 1 }
            }
            closedir(dir)
            // Less the descriptor opendir held while listing.
            figures.fdOpen = count > 0 ? count - 1 : 0
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max {
            figures.fdLimit = UInt64(limit.rlim_cur)
        }
        // statm (proc(5)): total program size and resident set, in pages.
        if let text = readProcFile("/proc/self/statm") {
            let fields = text.split(separator: " ")
            let page = UInt64(sysconf(Int32(_SC_PAGESIZE)))
            if fields.count > 1, let size = UInt64(fields[0]), let resident = UInt64(fields[1]) {
                figures.virtualBytes = size * page
                figures.rssBytes = resident * page
            }
        }
        return figures
    }

    /// When the process started, in seconds since the Unix epoch: the boot time
    /// (`btime` of /proc/stat) plus the process's start in clock ticks after boot
    /// (field 22 of /proc/self/stat), as Prometheus's Go client computes it.
    public static func startTimeUnixSeconds() -> Double? {
        guard let stat = readProcFile("/proc/self/stat"),
              let system = readProcFile("/proc/stat") else { return nil }
        // The command name (field 2) is in parentheses and may hold blanks: count the
        // fields after its closing parenthesis, which is field 3.
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let after = stat[stat.index(after: close)...].split(separator: " ")
        guard after.count > 19, let ticks = UInt64(after[19]) else { return nil }
        guard let line = system.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }),
              let boot = UInt64(line.dropFirst("btime ".count)) else { return nil }
        let hertz = sysconf(Int32(_SC_CLK_TCK))
        guard hertz > 0 else { return nil }
        return Double(boot) + Double(ticks) / Double(hertz)
    }

    /// The text of a small /proc file (at most 64 KiB; /proc/stat on a large machine is
    /// the largest read here), or nil.
    static func readProcFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 64 << 10 {
            let n = Glibc.read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
