// Typed, diagnosing access to parsed TOML tables. Every lookup that fails
// reports and returns nil instead of throwing, so one pass over the file
// collects every problem (SPEC.md §2: "all reported, not only the first").

/// Accumulates the diagnostics of one load. A class so the section, rule and
/// target readers can all append to the same list without threading `inout`
/// through every helper; it never leaves the loading call.
final class DiagnosticCollector {
    private(set) var diagnostics: [ConfigDiagnostic] = []
    /// Problems that do not stop the file from loading (a `log_level` Portunus would
    /// run with, falling back to `warn`): `--check` prints them, start-up logs them.
    private(set) var warnings: [ConfigDiagnostic] = []

    /// Number reported so far: a reader compares counts to tell whether a
    /// rule came through clean.
    var count: Int { diagnostics.count }

    func report(_ code: String, _ scope: Scope, key: String?, _ message: String) {
        diagnostics.append(ConfigDiagnostic(
            code: code, rule: scope.rule, key: key.map(scope.qualified), message: message))
    }

    /// Reports a problem at the line and column where `key` is written, for keys whose
    /// value is a whole address or expression the operator will want to find in the file.
    func report(_ code: String, _ scope: Scope, key: String, at position: TOMLPosition?, _ message: String) {
        diagnostics.append(ConfigDiagnostic(
            code: code, rule: scope.rule, key: scope.qualified(key), line: position?.line, column: position?.column,
            message: message))
    }

    func warn(_ code: String, _ scope: Scope, key: String?, _ message: String) {
        warnings.append(ConfigDiagnostic(
            code: code, rule: scope.rule, key: key.map(scope.qualified), message: message, severity: .warning))
    }
}

/// Where a key lives, used to name it in diagnostics.
struct Scope {
    /// Rule name for `ConfigDiagnostic.rule`.
    var rule: String?
    /// Prepended to keys: `"global."`, `""` in a named rule, `"rule[2]."` in
    /// an unnamed one, then `"targets[0]."` inside a targets entry.
    var keyPrefix: String
    /// The table in words, for unknown-key messages: `[global]`, `[[rule]]`.
    var place: String

    static let topLevel = Scope(rule: nil, keyPrefix: "", place: "the top-level table")

    func qualified(_ key: String) -> String { keyPrefix + key }

    func nested(_ prefix: String, place: String) -> Scope {
        Scope(rule: rule, keyPrefix: keyPrefix + prefix, place: place)
    }
}

/// Reads one TOML table against a fixed set of known keys.
struct TableReader {
    let table: TOMLTable
    let scope: Scope
    let sink: DiagnosticCollector

    func has(_ key: String) -> Bool { table[key] != nil }

    func value(_ key: String) -> TOMLValue? { table[key] }

    /// The string at `key`; nil when absent or (reported) not a string.
    func string(_ key: String, hint: String? = nil) -> String? {
        guard let value = table[key] else { return nil }
        guard let string = value.string else {
            wrongType(key, expected: "a string", found: value, hint: hint)
            return nil
        }
        return string
    }

    /// The integer at `key`; nil when absent or (reported) not an integer.
    /// Floats are rejected rather than truncated: `1.5` seconds is a mistake.
    func integer(_ key: String, hint: String? = nil) -> Int? {
        guard let value = table[key] else { return nil }
        // Int is 64 bits wherever this runs, so every TOML integer fits.
        guard let int = value.integer.flatMap({ Int(exactly: $0) }) else {
            wrongType(key, expected: "an integer", found: value, hint: hint)
            return nil
        }
        return int
    }

    /// The boolean at `key`; nil when absent or (reported) not a boolean.
    func bool(_ key: String) -> Bool? {
        guard let value = table[key] else { return nil }
        guard let bool = value.bool else {
            wrongType(key, expected: "a boolean (true or false)", found: value, hint: nil)
            return nil
        }
        return bool
    }

    /// An integer that must lie in `range`; out-of-range values are reported
    /// as `validation.value_out_of_range` and yield nil.
    func integer(_ key: String, in range: ClosedRange<Int>, meaning: String) -> Int? {
        guard let int = integer(key) else { return nil }
        guard range.contains(int) else {
            let bound = range.upperBound == Int.max ? "at least \(range.lowerBound)" : "within \(range)"
            sink.report(ConfigDiagnostic.Code.valueOutOfRange, scope, key: key,
                        "\(int) is out of range: \(meaning) must be \(bound)")
            return nil
        }
        return int
    }

    /// A string naming one case of `E`; other strings are reported with `code`, and so,
    /// with `anyType`, is a value that is not a string at all (else `wrong_type`).
    func choice<E: RawRepresentable & CaseIterable>(_ key: String, code: String, anyType: Bool = false) -> E?
        where E.RawValue == String {
        if anyType, let value = value(key), value.string == nil {
            sink.report(code, scope, key: key, "\(value.typeDescription) is not one of \(E.choices)")
            return nil
        }
        guard let text = string(key) else { return nil }
        guard let value = E(rawValue: text) else {
            sink.report(code, scope, key: key, "\(quoted(text)) is not one of \(E.choices)")
            return nil
        }
        return value
    }

    func wrongType(_ key: String, expected: String, found value: TOMLValue, hint: String?) {
        var message = "expected \(expected), found \(value.typeDescription)"
        if let hint { message += "; \(hint)" }
        sink.report(ConfigDiagnostic.Code.wrongType, scope, key: key, message)
    }

    /// Reports every key not in `known`, sorted by name as they always were
    /// (toml++ did not keep the file's order), so the output did not change.
    func reportUnknownKeys(known: Set<String>) {
        for key in table.keys.sorted() where !known.contains(key) {
            var message = "unknown key \(quoted(key)) in \(scope.place)"
            if let guess = suggestion(for: key, among: known) {
                message += "; did you mean \(quoted(guess))?"
            }
            sink.report(ConfigDiagnostic.Code.unknownKey, scope, key: key, message)
        }
    }
}

/// A string in double quotes with `"`, `\\` and control characters escaped
/// as TOML would write them, so stray whitespace or odd bytes stay visible.
/// (Not `debugDescription`: it spells control characters Swift's way,
/// `\u{7F}`, not TOML's.)
func quoted(_ text: some StringProtocol) -> String {
    var result = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        case "\n": result += "\\n"
        case "\t": result += "\\t"
        case "\r": result += "\\r"
        case _ where scalar.value < 0x20 || scalar.value == 0x7F:
            result += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                + String(scalar.value, radix: 16, uppercase: true)
        default: result.unicodeScalars.append(scalar)
        }
    }
    return result + "\""
}

extension CaseIterable where Self: RawRepresentable, RawValue == String {
    /// `"a", "b", "c"`: the accepted spellings for a message.
    static var choices: String { allCases.map { quoted($0.rawValue) }.joined(separator: ", ") }
}

extension TOMLValue {
    /// The value's type in words, with the value itself for scalars:
    /// `a string ("2222")`, `a floating-point number (1.5)`, `a table`.
    var typeDescription: String {
        switch self {
        case .string(let text): "a string (\(quoted(text)))"
        case .integer(let int): "an integer (\(int))"
        case .float(let double): "a floating-point number (\(double))"
        case .boolean(let bool): "a boolean (\(bool))"
        case .table: "a table"
        case .array: "an array"
        case .localDate: "a date"
        case .localTime: "a time"
        case .localDateTime, .offsetDateTime: "a date-time"
        }
    }
}

/// The known key an unknown one was probably meant to be: a typo (edit
/// distance <= 2) or a shortening (`proto` for `protocol`). Ties go to the
/// alphabetically first key so the message is stable.
func suggestion(for key: String, among known: Set<String>) -> String? {
    let candidates = known.filter { candidate in
        editDistance(key, candidate) <= 2
            || (key.count >= 3 && (candidate.hasPrefix(key) || key.hasPrefix(candidate)))
    }
    return candidates.min { (editDistance(key, $0), $0) < (editDistance(key, $1), $1) }
}

/// Levenshtein distance, for "did you mean" on misspelt keys. Keys are short,
/// so the quadratic table is fine.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.utf8), b = Array(b.utf8)
    guard !a.isEmpty else { return b.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in stride(from: 1, through: b.count, by: 1) {
            let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
            current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
        }
        previous = current
    }
    return previous[b.count]
}
