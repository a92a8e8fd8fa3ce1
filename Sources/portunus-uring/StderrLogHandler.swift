import Glibc
import Logging
import PortunusConfig
import PortunusStats

/// How log lines look on stderr.
enum LogStyle: String {
    /// One JSON object per line (default), in Portunus's shape (tracing-subscriber's
    /// JSON): `{"timestamp":"…","level":"INFO","fields":{"message":"…","event":"…",…},"target":"portunus::rule"}`.
    case json
    /// `2026-11-28T11:00:00.123Z INFO message event=… key=value`: for people.
    case pretty
}

/// A swift-log handler writing one line per event to stderr with a single write(2),
/// so lines from different worker threads never interleave. Every line names its
/// event (`fields.event`, PORTUNUS_COMPAT.md); its target, from the event's name
/// (`rule.*` → `portunus::rule`, `standalone.*` → `portunus::standalone`,
/// `stats_socket_*` → `portunus::stats`, `shutdown.*` → `portunus::shutdown`), is what
/// the tracing-style `log_level` filter matches. Numbers logged as
/// `.stringConvertible(Int)` stay numbers in JSON, booleans stay booleans.
struct StderrLogHandler: LogHandler {
    let style: LogStyle
    let filter: LogFilter
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    init(style: LogStyle, filter: LogFilter) {
        self.style = style
        self.filter = filter
        // swift-log asks the handler's level before building a line: the most verbose
        // level any target may use, and each line is then held to its own target's.
        logLevel = filter.mostVerbose.map(Self.swiftLogLevel) ?? .critical
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    static func swiftLogLevel(_ level: LogLevel) -> Logger.Level {
        switch level {
        case .error: .error
        case .warn: .warning
        case .info: .info
        case .debug: .debug
        case .trace: .trace
        }
    }

    static func verbosity(_ level: Logger.Level) -> Int {
        switch level {
        case .critical, .error: 0
        case .warning: 1
        case .notice, .info: 2
        case .debug: 3
        case .trace: 4
        }
    }

    static func target(ofEvent event: String) -> String {
        if event.hasPrefix("rule.") { return "portunus::rule" }
        if event.hasPrefix("standalone.") { return "portunus::standalone" }
        if event.hasPrefix("stats_socket") { return "portunus::stats" }
        if event.hasPrefix("shutdown.") { return "portunus::shutdown" }
        return "portunus"
    }

    func log(event: LogEvent) {
        var fields = metadata
        if let extra = event.metadata { fields.merge(extra) { $1 } }
        let name = fields.removeValue(forKey: "event").map { "\($0)" } ?? "portunus.log"
        let target = Self.target(ofEvent: name)
        guard let allowed = filter.level(for: target), Self.verbosity(event.level) <= allowed.verbosity else { return }
        let time = Self.timestamp()
        let level = Self.name(event.level)
        var line: String
        switch style {
        case .json:
            line = "{\"timestamp\":\"\(time)\",\"level\":\"\(level)\",\"fields\":{\"message\":"
            Self.quote(event.message.description, into: &line)
            line += ",\"event\":"
            Self.quote(name, into: &line)
            for key in fields.keys.sorted() {
                line += ","
                Self.quote(key, into: &line)
                line += ":"
                Self.json(fields[key]!, into: &line)
            }
            line += "},\"target\":\"\(target)\"}\n"
        case .pretty:
            line = "\(time) \(level) \(event.message) event=\(name)"
            for key in fields.keys.sorted() { line += " \(key)=\(fields[key]!)" }
            line += "\n"
        }
        var bytes = Array(line.utf8)
        bytes.withUnsafeMutableBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(2, raw.baseAddress! + offset, raw.count - offset)
                if n <= 0 { if n < 0 && errno == EINTR { continue }; return }
                offset += n
            }
        }
    }

    /// tracing's level names.
    static func name(_ level: Logger.Level) -> String {
        switch level {
        case .trace: "TRACE"
        case .debug: "DEBUG"
        case .info, .notice: "INFO"
        case .warning: "WARN"
        case .error, .critical: "ERROR"
        }
    }

    static func json(_ value: Logger.Metadata.Value, into out: inout String) {
        switch value {
        case let .string(s): quote(s, into: &out)
        case let .stringConvertible(v):
            if v is any BinaryInteger || v is Bool { out += v.description } else { quote(v.description, into: &out) }
        case let .array(items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                json(item, into: &out)
            }
            out += "]"
        case let .dictionary(members):
            out += "{"
            for (i, key) in members.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                quote(key, into: &out)
                out += ":"
                json(members[key]!, into: &out)
            }
            out += "}"
        }
    }

    /// RFC 3339 UTC with microseconds, as tracing-subscriber writes it.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var t = now.tv_sec
        var parts = tm()
        gmtime_r(&t, &parts)
        func pad(_ v: Int, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2))T"
            + "\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2)).\(pad(now.tv_nsec / 1000, 6))Z"
    }

    /// A JSON string literal (the stats socket's escaping).
    static func quote(_ s: String, into out: inout String) { JSON.quote(s, into: &out) }
}
