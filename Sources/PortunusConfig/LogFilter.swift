/// `log_level` / `--log-level`: a tracing-style filter, as Portunus takes it (its
/// `EnvFilter`): a bare level (`info`), or comma-separated directives `target=level`
/// with an optional bare default (`portunus=debug,info`, `warn,portunus::rule=debug`).
/// A target matches itself and everything below it (`portunus` covers
/// `portunus::rule`); the longest matching target decides, else the bare default. As
/// in tracing, a filter of directives only logs nothing else, and an empty one (or
/// only commas) logs errors. `off` silences a target; a bare target (`portunus`)
/// logs all of it. Unlike EnvFilter, a target matches at `::` boundaries only
/// (`portunus::rule` does not cover `portunus::ruler`), levels are names, not numbers,
/// and `warning` is read as `warn` rather than as a target of that name.
public struct LogFilter: Sendable, Equatable, CustomStringConvertible {
    public struct Directive: Sendable, Equatable {
        public let target: String
        /// nil: `off`.
        public let level: LogLevel?
    }

    /// The level for targets no directive names (nil: off).
    public let defaultLevel: LogLevel?
    /// Longest target first, so the first match is the one that decides.
    public let directives: [Directive]
    /// The text it was read from.
    public let text: String

    public init(level: LogLevel) {
        defaultLevel = level
        directives = []
        text = level.rawValue
    }

    /// Parses `text`; nil when it is not a filter (an unknown level, an empty or
    /// malformed directive, span filters `[...]` which have no meaning here).
    public init?(_ text: String) {
        var defaultLevel: LogLevel?? = nil
        var directives: [Directive] = []
        // Empty directives are skipped and a later bare level replaces an earlier one,
        // as EnvFilter does.
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingSpaces() }.filter { !$0.isEmpty }
        for part in parts {
            guard !part.contains("["), !part.contains("{") else { return nil }
            if let eq = part.firstIndex(of: "=") {
                let target = String(part[..<eq]).trimmingSpaces(), value = String(part[part.index(after: eq)...]).trimmingSpaces()
                guard Self.isTarget(target), let level = Self.level(value) else { return nil }
                directives.append(Directive(target: target, level: level))
            } else if let level = Self.level(part) {
                defaultLevel = .some(level)
            } else if Self.isTarget(part) {
                // A bare target enables everything it logs (tracing's meaning).
                directives.append(Directive(target: part, level: .trace))
            } else {
                return nil
            }
        }
        self.defaultLevel = defaultLevel ?? (directives.isEmpty ? .error : nil)
        self.directives = directives.sorted { $0.target.count > $1.target.count }
        self.text = text
    }

    /// The least severe level logged for `target` (nil: nothing).
    public func level(for target: String) -> LogLevel? {
        for directive in directives where target == directive.target || target.hasPrefix(directive.target + "::") {
            return directive.level
        }
        return defaultLevel
    }

    /// The most verbose level any target may log at (nil: nothing at all).
    public var mostVerbose: LogLevel? {
        ([defaultLevel] + directives.map(\.level)).compactMap { $0 }.max { $0.verbosity < $1.verbosity }
    }

    public var description: String { text }

    static func level(_ text: String) -> LogLevel?? {
        let lower = text.lowercased()
        if lower == "off" { return .some(nil) }
        if lower == "warning" { return .some(.warn) }
        guard let level = LogLevel(rawValue: lower) else { return nil }
        return .some(level)
    }

    /// A Rust module path: identifiers joined by `::`.
    static func isTarget(_ text: String) -> Bool {
        let segments = text.split(separator: ":", omittingEmptySubsequences: false)
        // "a::b" splits into ["a", "", "b"]: every second segment is the empty one.
        guard segments.count % 2 == 1 else { return false }
        for (i, segment) in segments.enumerated() {
            if i % 2 == 1 { guard segment.isEmpty else { return false }; continue }
            guard let first = segment.unicodeScalars.first, first == "_" || first.properties.isAlphabetic,
                  segment.unicodeScalars.allSatisfy({ $0 == "_" || $0 == "-" || $0.properties.isAlphabetic || ("0"..."9").contains($0) })
            else { return false }
        }
        return true
    }
}

extension LogLevel {
    /// error 0 … trace 4: a larger value logs more.
    public var verbosity: Int {
        switch self {
        case .error: 0
        case .warn: 1
        case .info: 2
        case .debug: 3
        case .trace: 4
        }
    }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
