// What `--check` and a failed start-up print: one line per problem, naming
// the rule and the key, with a code that scripts and tests can match on.

/// One problem found in a configuration file.
///
/// `description` is the line printed for the operator, e.g.
/// `error[validation.proxy_protocol_invalid]: rule "web", targets[0].proxy_protocol: "v3" is not one of "v1", "v2"`
/// or, when the position is known (TOML syntax errors),
/// `portunus.toml:3:9: error[parse.syntax]: ...`.
public struct ConfigDiagnostic: Sendable, Equatable, CustomStringConvertible {
    /// Stable machine-readable code such as `validation.listen_port_overlap`;
    /// see `ConfigDiagnostic.Code`. Codes never change meaning.
    public let code: String
    /// Name of the rule the problem is in, when the rule has a usable name.
    public let rule: String?
    /// The offending key relative to its rule (`targets[0].proxy_protocol`),
    /// or qualified by its table (`stats.refresh_ms`). A rule without a usable
    /// name is named by position instead: `rule[2].listen_port`.
    public let key: String?
    /// 1-based line, when known: syntax errors carry one; validation problems
    /// name the rule and key instead, which is how they have always printed.
    public let line: Int?
    /// 1-based column, when known.
    public let column: Int?
    /// What is wrong and, where it helps, what to write instead.
    public let message: String
    /// The file, used as the position prefix; nil when not known.
    public let path: String?
    /// An error stops the file from loading; a warning is printed and loading goes on.
    public let severity: Severity

    public enum Severity: String, Sendable { case error, warning }

    /// Creates a diagnostic.
    public init(code: String, rule: String? = nil, key: String? = nil,
                line: Int? = nil, column: Int? = nil, message: String, path: String? = nil, severity: Severity = .error) {
        self.severity = severity
        self.code = code
        self.rule = rule
        self.key = key
        self.line = line
        self.column = column
        self.message = message
        self.path = path
    }

    /// `[PATH:LINE:COL: ]error[CODE]: [rule "NAME"][, KEY]: MESSAGE` (`warning[CODE]` for a warning).
    public var description: String {
        var text = ""
        if let line {
            text += "\(path ?? "<string>"):\(line):"
            if let column { text += "\(column):" }
            text += " "
        }
        text += "\(severity.rawValue)[\(code)]: "
        let location = [rule.map { "rule \"\($0)\"" }, key].compactMap { $0 }
        if !location.isEmpty { text += location.joined(separator: ", ") + ": " }
        return text + message
    }
}

/// Everything wrong with one configuration file; thrown by `ConfigLoader`.
/// Loading never stops at the first problem, so `diagnostics` is never empty.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file that was loaded (`"<string>"` for text parsed directly).
    public let path: String
    /// Every problem, in file order where the file's structure allows.
    public let diagnostics: [ConfigDiagnostic]

    /// Creates an error; `diagnostics` must not be empty.
    public init(path: String, diagnostics: [ConfigDiagnostic]) {
        precondition(!diagnostics.isEmpty, "a ConfigError needs at least one diagnostic")
        self.path = path
        self.diagnostics = diagnostics
    }

    /// One line per diagnostic.
    public var description: String {
        diagnostics.map(\.description).joined(separator: "\n")
    }

    /// The code of each diagnostic, in order: for callers that branch on the kind of problem.
    public var codes: [String] { diagnostics.map(\.code) }
}

extension ConfigDiagnostic {
    /// The stable diagnostic codes. Each names one kind of mistake; the
    /// message explains the particular instance.
    public enum Code {
        /// The file could not be read (missing, unreadable, a directory, too large).
        public static let ioReadFailed = "io.read_failed"
        /// The text is not valid TOML (or not UTF-8, or contains NUL).
        public static let parseSyntax = "parse.syntax"
        /// No `[[rule]]` at all.
        public static let noRules = "config.no_rules"
        /// Two rules share a name.
        public static let duplicateRuleName = "validation.duplicate_rule_name"
        /// A rule has no `name`, or it is empty or blank.
        public static let emptyRuleName = "validation.empty_rule_name"
        /// Both or neither of `listen_port` / `listen_ports`.
        public static let listenPortConflict = "validation.listen_port_conflict"
        /// Both or neither of `target` / `targets`.
        public static let targetConflict = "validation.target_conflict"
        /// A port or range is not `p` / `lo-hi`, or a target string has no port.
        public static let portRangeMalformed = "validation.port_range_malformed"
        /// A range `lo-hi` with `lo > hi`.
        public static let portRangeInverted = "validation.port_range_inverted"
        /// A port of 0 or above 65535.
        public static let portOutOfRange = "validation.port_out_of_range"
        /// Listen and target ranges of different widths.
        public static let rangeWidthMismatch = "validation.range_width_mismatch"
        /// `targets = []`.
        public static let emptyTargets = "validation.empty_targets"
        /// Several targets with a listen port range.
        public static let multiTargetWithRange = "validation.multi_target_with_range"
        /// A host that is not IPv4, bracketed IPv6 or a valid DNS name.
        public static let hostInvalid = "validation.host_invalid"
        /// `protocol` other than `tcp` / `udp`.
        public static let protocolUnknown = "validation.protocol_unknown"
        /// `proxy_protocol` other than exactly `"v1"` / `"v2"` (from the seed document).
        public static let proxyProtocolInvalid = "validation.proxy_protocol_invalid"
        /// `proxy_protocol` on a target of a UDP rule (from the seed document); also each of
        /// the additions `proxy_protocol_tlvs` / `_unique_id` / `_crc32c` on such a target.
        public static let proxyProtocolOnUnsupportedRule = "validation.proxy_protocol_on_unsupported_rule"
        /// Two rules of one protocol listen on a shared port.
        public static let listenPortOverlap = "validation.listen_port_overlap"
        /// A key the schema does not know.
        public static let unknownKey = "validation.unknown_key"
        /// A value of the wrong TOML type.
        public static let wrongType = "validation.wrong_type"
        /// A required key of a `targets` entry (`host`, `port`) is missing.
        public static let missingKey = "validation.missing_key"
        /// `stats.refresh_ms` outside 250...5000 while stats are enabled.
        public static let refreshMsOutOfRange = "validation.refresh_ms_out_of_range"
        /// `log_level` not a level or tracing-style filter: a warning (the file runs with `warn`).
        public static let logLevelInvalid = "validation.log_level_invalid"
        /// `log_format` not json / pretty.
        public static let logFormatInvalid = "validation.log_format_invalid"
        /// `metrics.listen` not `A.B.C.D:PORT` or `[IPv6]:PORT` with a port of 1-65535.
        public static let metricsListenInvalid = "validation.metrics_listen_invalid"
        /// A number outside its allowed range (drain, flows, idle, priority, socket path length,
        /// `accept_proxy_timeout_secs`).
        public static let valueOutOfRange = "validation.value_out_of_range"
        /// `accept_proxy` (an addition) other than exactly `"v1"` / `"v2"` / `"any"`, including a
        /// non-string; or set on a UDP rule, or in a `[defaults]` whose `protocol` is `"udp"`
        /// (PROXY on the way in is TCP only).
        public static let acceptProxyInvalid = "validation.accept_proxy_invalid"
        /// A warning: a rule sets `accept_proxy_timeout_secs` but ends up accepting no PROXY
        /// header (no `accept_proxy` of its own or from `[defaults]`, or a UDP rule), so the
        /// timeout is never used. The file loads.
        public static let acceptProxyTimeoutUnused = "validation.accept_proxy_timeout_unused"
        /// `proxy_protocol_tlvs`, `proxy_protocol_unique_id` or `proxy_protocol_crc32c` (additions)
        /// on a target whose `proxy_protocol` is not `"v2"`: only v2 headers carry TLVs.
        public static let proxyProtocolOptionNeedsV2 = "validation.proxy_protocol_option_needs_v2"
    }
}
