import Glibc
import PortunusRing

/// `portunus-uring stats`: a live terminal dashboard over the stats socket, in the
/// spirit of Portunus's: an overview of the rules with rates, one rule in detail with a
/// 60 s history, and the error counters. Redrawn at each snapshot (every `refresh_ms`)
/// and on resize. The terminal is put in raw mode on the alternate screen and given
/// back as it was on every way out: `q`, Ctrl-C, SIGTERM/SIGHUP, or the socket closing.
///
/// Keys: 1 / 2 / 3 or Tab switch views; ↑ ↓ (or k j) choose the rule; q or Ctrl-C quits.
public final class Dashboard {
    enum View: Int { case overview = 0, detail, errors }

    struct RuleInfo {
        let id: String
        let name: String
        let proto: String
        let listen: String
        let targets: [String]
    }

    /// What is drawn for one rule: the last snapshot's counters and per-second rates.
    struct RuleState {
        var counters: [String: UInt64] = [:]
        var errors: [(String, UInt64)] = []
        var rates: [String: Double] = [:]
        /// (uptime ms, bytes in/s, bytes out/s) over the last 60 s.
        var history: [(UInt64, Double, Double)] = []
    }

    static let historyMs: UInt64 = 60_000
    static let rateKeys = ["in", "out", "conns_total", "datagrams_in", "datagrams_out"]

    private let path: String
    private var view = View.overview
    private var selected = 0
    private var rules: [RuleInfo] = []
    private var states: [RuleState] = []
    private var process: JSON = .null
    private var refreshMs: UInt64 = 1000
    private var version = ""
    private var uptimeMs: UInt64 = 0
    private var lastUptimeMs: UInt64?
    private var size = (rows: 24, columns: 80)

    public init(path: String) { self.path = path }

    public func run() throws(StatsClientError) {
        let connection = try StatsConnection(path: path)
        let hello = try StatsConnection.parse(connection.readLine(timeoutMs: 10_000), what: "hello")
        readHello(hello)
        var signals = sigset_t()
        sigemptyset(&signals)
        for s in [SIGINT, SIGTERM, SIGHUP, SIGWINCH] { sigaddset(&signals, s) }
        // Blocked and collected between polls (sigtimedwait), so none of them can end the
        // process with the terminal still raw, and no code runs in signal context.
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        let saved = enterRawMode()
        defer { leaveRawMode(saved) }
        size = Terminal.size(STDOUT_FILENO) ?? size
        // The first snapshot may have come in with the hello.
        while let line = connection.takeLine() { readSnapshot(try StatsConnection.parse(line, what: "snapshot")) }
        draw()
        var fds = [pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: connection.fileDescriptor, events: Int16(POLLIN), revents: 0)]
        while true {
            for i in fds.indices { fds[i].revents = 0 }
            // 100 ms: how long a resize or SIGTERM may wait to be seen.
            if poll(&fds, nfds_t(fds.count), 100) < 0 && errno != EINTR {
                throw StatsClientError(description: "poll: \(String(cString: strerror(errno)))")
            }
            var none = timespec()
            while case let signal = sigtimedwait(&signals, nil, &none), signal > 0 {
                guard signal == SIGWINCH else { return }
                size = Terminal.size(STDOUT_FILENO) ?? size
                draw()
            }
            if fds[0].revents != 0 {
                var keys = [UInt8](repeating: 0, count: 64)
                let n = read(STDIN_FILENO, &keys, keys.count)
                if n <= 0 { return }
                if !handleKeys(Array(keys[0..<n])) { return }
                draw()
            }
            if fds[1].revents != 0 {
                try connection.readAvailable()
                while let line = connection.takeLine() {
                    // After a reload the daemon sends its new hello before the next snapshot.
                    let document = try StatsConnection.parse(line, what: "snapshot")
                    if document["v"] != nil && document["rules"] != nil { readHello(document) } else { readSnapshot(document) }
                }
                draw()
            }
        }
    }

    // MARK: input

    /// false: quit.
    func handleKeys(_ keys: [UInt8]) -> Bool {
        var i = 0
        while i < keys.count {
            switch keys[i] {
            case UInt8(ascii: "q"), UInt8(ascii: "Q"), 3: return false
            case UInt8(ascii: "1"): view = .overview
            case UInt8(ascii: "2"): view = .detail
            case UInt8(ascii: "3"): view = .errors
            case 9: view = View(rawValue: (view.rawValue + 1) % 3)!
            case UInt8(ascii: "j"): move(1)
            case UInt8(ascii: "k"): move(-1)
            case 0x1B where i + 2 < keys.count && keys[i + 1] == UInt8(ascii: "["):
                if keys[i + 2] == UInt8(ascii: "A") { move(-1) }
                if keys[i + 2] == UInt8(ascii: "B") { move(1) }
                i += 2
            default: break
            }
            i += 1
        }
        return true
    }

    private func move(_ by: Int) {
        guard !rules.isEmpty else { return }
        selected = min(max(selected + by, 0), rules.count - 1)
    }

    // MARK: documents

    func readHello(_ hello: JSON) {
        version = hello["daemon_version"]?.stringValue ?? "?"
        refreshMs = hello["refresh_ms"]?.uint64Value ?? 1000
        let kept = Dictionary(zip(rules.map(\.id), states), uniquingKeysWith: { first, _ in first })
        rules = (hello["rules"]?.arrayValue ?? []).map { rule in
            let targets = (rule["targets"]?.arrayValue ?? []).map { target -> String in
                let host = target["host"]?.stringValue ?? "?"
                let port = target["port"]?.uint64Value.map(String.init) ?? "?"
                let proxy = target["proxy_protocol"]?.stringValue.map { " proxy \($0)" } ?? ""
                return "\(host.contains(":") ? "[\(host)]" : host):\(port) priority \(target["priority"]?.uint64Value ?? 0)\(proxy)"
            }
            return RuleInfo(id: rule["id"]?.stringValue ?? "?", name: rule["name"]?.stringValue ?? "?",
                            proto: rule["proto"]?.stringValue ?? "?", listen: rule["listen"]?.stringValue ?? "?", targets: targets)
        }
        // A rule a reload kept keeps its rates and history.
        states = rules.map { kept[$0.id] ?? RuleState() }
        selected = min(selected, max(rules.count - 1, 0))
    }

    func readSnapshot(_ snapshot: JSON) {
        uptimeMs = snapshot["uptime_ms"]?.uint64Value ?? uptimeMs
        process = snapshot["process"] ?? .null
        let elapsedSecs = lastUptimeMs.map { uptimeMs > $0 ? Double(uptimeMs - $0) / 1000 : 0 } ?? 0
        for entry in snapshot["r"]?.arrayValue ?? [] {
            guard let i = rules.firstIndex(where: { $0.id == entry["id"]?.stringValue }) else { continue }
            var state = states[i]
            var counters: [String: UInt64] = [:]
            if case let .object(members) = entry {
                for (key, value) in members { if let n = value.uint64Value { counters[key] = n } }
            }
            if case let .object(errors)? = entry["err"] {
                state.errors = errors.map { ($0.0, $0.1.uint64Value ?? 0) }
            }
            if case let .object(extra)? = entry["uring"] {
                state.errors += extra.map { ("uring." + $0.0, $0.1.uint64Value ?? 0) }
            }
            // A rule's first snapshot (at start, or added by a reload) has no earlier one
            // to take a rate from: its totals may include what older workers counted.
            if elapsedSecs > 0 && !state.counters.isEmpty {
                for key in Self.rateKeys {
                    let now = counters[key] ?? 0, before = state.counters[key] ?? 0
                    state.rates[key] = now >= before ? Double(now - before) / elapsedSecs : 0
                }
                state.history.append((uptimeMs, state.rates["in"] ?? 0, state.rates["out"] ?? 0))
                state.history.removeAll { $0.0 + Self.historyMs < uptimeMs }
            }
            state.counters = counters
            states[i] = state
        }
        lastUptimeMs = uptimeMs
    }

    // MARK: drawing

    private func draw() {
        var lines: [String] = []
        let fds = process["fd_open"]?.uint64Value.map(String.init) ?? "?"
        let limit = process["fd_limit"]?.uint64Value.map(String.init) ?? "?"
        let rss = process["rss_bytes"]?.uint64Value.map { Self.bytes(Double($0)) } ?? "?"
        lines.append(Self.bold("portunus-uring \(version)") + "  up \(Self.duration(uptimeMs))  rules \(rules.count)  fds \(fds)/\(limit)  rss \(rss)  refresh \(refreshMs) ms")
        let tabs = ["1 Overview", "2 Detail", "3 Errors"].enumerated().map { i, name in i == view.rawValue ? Self.reverse(" \(name) ") : " \(name) " }
        lines.append(tabs.joined(separator: " ") + "   ↑↓ rule  q quit")
        lines.append("")
        switch view {
        case .overview: lines += overview()
        case .detail: lines += detail()
        case .errors: lines += errorTable()
        }
        // No newline after the last row: on the bottom row it would scroll the title away.
        let shown = lines.prefix(size.rows).map { Self.fit($0, size.columns) + "\u{1B}[K" }
        let frame = "\u{1B}[H" + shown.joined(separator: "\r\n") + "\u{1B}[J"
        Self.write(frame)
    }

    private func overview() -> [String] {
        var lines = [Self.bold(Self.row(["rule", "proto", "listen", "in/s", "out/s", "conns", "conns/s", "dgrams in/s", "dgrams out/s", "flows"]))]
        for (i, rule) in rules.enumerated() {
            let s = states[i]
            let cells = [rule.name, rule.proto, rule.listen, Self.bytes(s.rates["in"] ?? 0), Self.bytes(s.rates["out"] ?? 0),
                         "\(s.counters["conns_active"] ?? 0)", Self.count(s.rates["conns_total"] ?? 0),
                         Self.count(s.rates["datagrams_in"] ?? 0), Self.count(s.rates["datagrams_out"] ?? 0),
                         "\(s.counters["flows_active"] ?? 0)"]
            lines.append(i == selected ? Self.reverse(Self.row(cells)) : Self.row(cells))
        }
        return lines
    }

    private func detail() -> [String] {
        guard selected < rules.count else { return ["no rules"] }
        let rule = rules[selected], s = states[selected]
        var lines = [Self.bold("\(rule.name)") + "  id \(rule.id)  \(rule.proto) listen \(rule.listen)"]
        lines += rule.targets.map { "  → \($0)" }
        lines.append("")
        for key in ["in", "out", "conns_active", "conns_total", "datagrams_in", "datagrams_out", "flows_active", "target_failovers_total"] {
            let rate = s.rates[key].map { Self.rateKeys.contains(key) ? "  (\(key == "in" || key == "out" ? Self.bytes($0) : Self.count($0))/s)" : "" } ?? ""
            lines.append("  " + Self.pad(key, 24) + "\(s.counters[key] ?? 0)" + rate)
        }
        lines.append("")
        lines.append("  last 60 s, bytes in/s   " + Self.sparkline(s.history.map(\.1)))
        lines.append("  last 60 s, bytes out/s  " + Self.sparkline(s.history.map(\.2)))
        return lines
    }

    private func errorTable() -> [String] {
        guard let first = states.first(where: { !$0.errors.isEmpty }) else { return ["no snapshot yet"] }
        let names = first.errors.map(\.0)
        var lines = [Self.bold(Self.pad("counter", 28) + rules.map { Self.pad($0.name, 16) }.joined())]
        for (k, name) in names.enumerated() {
            var line = Self.pad(name, 28)
            for state in states {
                let value = k < state.errors.count ? state.errors[k].1 : 0
                line += value > 0 ? Self.bold(Self.pad("\(value)", 16)) : Self.pad("\(value)", 16)
            }
            lines.append(line)
        }
        return lines
    }

    // MARK: terminal

    private func enterRawMode() -> termios? {
        var saved = termios()
        guard tcgetattr(STDIN_FILENO, &saved) == 0 else { return nil }
        var raw = saved
        // No echo, no line editing, Ctrl-C as a byte (ISIG off), no CR/NL translation.
        raw.c_lflag &= ~tcflag_t(ECHO | ICANON | ISIG | IEXTEN)
        raw.c_iflag &= ~tcflag_t(IXON | ICRNL)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw)
        Self.write("\u{1B}[?1049h\u{1B}[?25l\u{1B}[H\u{1B}[2J")
        return saved
    }

    private func leaveRawMode(_ saved: termios?) {
        Self.write("\u{1B}[?25h\u{1B}[?1049l")
        if var saved { tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved) }
    }

    private static func write(_ text: String) {
        var bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(STDOUT_FILENO, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            done += n
        }
    }

    // MARK: formatting

    static func bold(_ s: String) -> String { "\u{1B}[1m\(s)\u{1B}[0m" }
    static func reverse(_ s: String) -> String { "\u{1B}[7m\(s)\u{1B}[0m" }

    static func pad(_ s: String, _ width: Int) -> String {
        let count = s.count
        return count >= width ? String(s.prefix(width - 1)) + " " : s + String(repeating: " ", count: width - count)
    }

    static func row(_ cells: [String]) -> String {
        let widths = [16, 6, 12, 11, 11, 8, 9, 13, 13, 7]
        return zip(cells, widths).map { pad($0, $1) }.joined()
    }

    /// Cuts a line to `columns` visible characters, escape sequences kept whole.
    static func fit(_ line: String, _ columns: Int) -> String {
        var out = "", visible = 0, inEscape = false
        for ch in line {
            if ch == "\u{1B}" { inEscape = true }
            if inEscape {
                out.append(ch)
                if ch.isLetter { inEscape = false }
                continue
            }
            guard visible < columns else { continue }
            out.append(ch)
            visible += 1
        }
        return out + "\u{1B}[0m"
    }

    static func bytes(_ value: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        // A hostile or broken socket cannot make Int() trap.
        var v = min(max(value, 0), 1e18), unit = 0
        while v >= 1024 && unit < units.count - 1 { v /= 1024; unit += 1 }
        return unit == 0 ? "\(Int(v)) B" : "\(Int(v * 10) / 10).\(Int(v * 10) % 10) \(units[unit])"
    }

    static func count(_ value: Double) -> String {
        let v = min(max(value, 0), 1e15)
        return v >= 10_000 ? "\(Int(v / 1000))k" : "\(Int(v))"
    }

    static func duration(_ ms: UInt64) -> String {
        let s = ms / 1000
        return s >= 3600 ? "\(s / 3600)h\(s % 3600 / 60)m" : s >= 60 ? "\(s / 60)m\(s % 60)s" : "\(s)s"
    }

    static func sparkline(_ values: [Double]) -> String {
        guard let top = values.max(), top > 0 else { return values.isEmpty ? "(no data yet)" : String(repeating: "▁", count: values.count) }
        let marks = Array("▁▂▃▄▅▆▇█")
        return String(values.map { marks[min(Int($0 / top * Double(marks.count - 1)), marks.count - 1)] }) + "  peak \(bytes(top))/s"
    }
}
