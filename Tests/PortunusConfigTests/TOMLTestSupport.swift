// Renderings of parsed TOML for the tests, and Python's `tomllib` as the
// independent oracle: both sides print the same canonical JSON, so a
// document is compared value by value, types included.
import Foundation
import PortunusConfig
import TestSupport

/// `json.dumps(value, sort_keys=True, separators=(",", ":"))` of the tagged
/// form below, byte for byte as Python writes it (ASCII only, keys sorted by
/// code point). Scalars are `{"type": T, "value": TEXT}`: integers in decimal,
/// floats as their IEEE 754 bits in hex (any NaN as `nan`), date-times in
/// RFC 3339 with six fraction digits (Python keeps microseconds), offsets as `±HH:MM`.
enum CanonicalJSON {
    static func render(_ table: TOMLTable) -> String {
        var out = ""
        write(.table(table), into: &out)
        return out
    }

    static func write(_ value: TOMLValue, into out: inout String) {
        switch value {
        case .string(let text): scalar("string", text, into: &out)
        case .integer(let int): scalar("integer", String(int), into: &out)
        case .float(let double):
            let bits = String(double.bitPattern, radix: 16)
            scalar("float", double.isNaN ? "nan" : String(repeating: "0", count: 16 - bits.count) + bits, into: &out)
        case .boolean(let bool): scalar("bool", bool ? "true" : "false", into: &out)
        case .offsetDateTime(let date, let time, let minutes):
            let sign = minutes < 0 ? "-" : "+"
            let offset = sign + two(abs(minutes) / 60) + ":" + two(abs(minutes) % 60)
            scalar("datetime", "\(date)T" + micro(time) + offset, into: &out)
        case .localDateTime(let date, let time): scalar("datetime-local", "\(date)T" + micro(time), into: &out)
        case .localDate(let date): scalar("date-local", date.description, into: &out)
        case .localTime(let time): scalar("time-local", micro(time), into: &out)
        case .array(let elements):
            out += "["
            for (index, element) in elements.enumerated() {
                if index > 0 { out += "," }
                write(element, into: &out)
            }
            out += "]"
        case .table(let table):
            out += "{"
            let sorted = table.entries.sorted {
                $0.key.unicodeScalars.lexicographicallyPrecedes($1.key.unicodeScalars) { $0.value < $1.value }
            }
            for (index, entry) in sorted.enumerated() {
                if index > 0 { out += "," }
                out += string(entry.key) + ":"
                write(entry.value, into: &out)
            }
            out += "}"
        }
    }

    private static func scalar(_ type: String, _ value: String, into out: inout String) {
        out += "{\"type\":" + string(type) + ",\"value\":" + string(value) + "}"
    }

    private static func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }

    private static func micro(_ time: TOMLTime) -> String {
        let micros = String(time.nanosecond / 1000)
        return two(time.hour) + ":" + two(time.minute) + ":" + two(time.second) + "."
            + String(repeating: "0", count: 6 - micros.count) + micros
    }

    /// A JSON string as Python's `ensure_ascii` writes it: lower-case `\uXXXX`,
    /// astral characters as surrogate pairs, DEL escaped.
    static func string(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case " "..."~": out.unicodeScalars.append(scalar)
            default:
                for unit in String(scalar).utf16 {
                    let hex = String(unit, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                }
            }
        }
        return out + "\""
    }
}

/// What one document gives: its canonical JSON, or `rejected`.
enum Outcome: Equatable, CustomStringConvertible {
    case accepted(String)
    case rejected(String)

    var isRejected: Bool {
        if case .rejected = self { return true }
        return false
    }

    var description: String {
        switch self {
        case .accepted(let json): json
        case .rejected(let why): "rejected: \(why)"
        }
    }
}

/// A document for both parsers: a file (read as bytes, so invalid UTF-8
/// reaches the check) or a text.
enum OracleInput {
    case file(String)
    case text(String)

    /// Ours: the loader's path, UTF-8 validation then `TOMLParser.parse`.
    var ours: Outcome {
        let text: String
        switch self {
        case .text(let given): text = given
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path) else { return .rejected("unreadable") }
            guard let decoded = String(validating: Array(data), as: UTF8.self) else { return .rejected("not UTF-8") }
            text = decoded
        }
        do {
            return .accepted(CanonicalJSON.render(try TOMLParser.parse(text)))
        } catch {
            return .rejected(error.description)
        }
    }

    fileprivate var json: String {
        switch self {
        case .file(let path): "{\"path\":" + CanonicalJSON.string(path) + "}"
        case .text(let text): "{\"text\":" + CanonicalJSON.string(text) + "}"
        }
    }
}

/// Python 3.11+'s `tomllib` on every input in one run, rendered as `CanonicalJSON` does.
enum PythonTOML {
    static let script = #"""
        import datetime, json, math, struct, sys, tomllib

        def tagged(v):
            if isinstance(v, bool):
                return {"type": "bool", "value": "true" if v else "false"}
            if isinstance(v, int):
                return {"type": "integer", "value": str(v)}
            if isinstance(v, float):
                return {"type": "float", "value": "nan" if math.isnan(v) else struct.pack(">d", v).hex()}
            if isinstance(v, str):
                return {"type": "string", "value": v}
            if isinstance(v, datetime.datetime):
                s = (f"{v.year:04d}-{v.month:02d}-{v.day:02d}T"
                     f"{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}")
                if v.tzinfo is None:
                    return {"type": "datetime-local", "value": s}
                m = int(v.utcoffset().total_seconds()) // 60
                sign = "-" if m < 0 else "+"
                return {"type": "datetime", "value": f"{s}{sign}{abs(m) // 60:02d}:{abs(m) % 60:02d}"}
            if isinstance(v, datetime.date):
                return {"type": "date-local", "value": f"{v.year:04d}-{v.month:02d}-{v.day:02d}"}
            if isinstance(v, datetime.time):
                return {"type": "time-local",
                        "value": f"{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}"}
            if isinstance(v, list):
                return [tagged(x) for x in v]
            return {k: tagged(x) for k, x in v.items()}

        for item in json.load(sys.stdin):
            try:
                if "path" in item:
                    with open(item["path"], "rb") as f:
                        text = f.read().decode("utf-8")
                else:
                    text = item["text"]
                print(json.dumps(tagged(tomllib.loads(text)), sort_keys=True, separators=(",", ":")))
            except Exception as error:
                print("rejected: " + type(error).__name__)
        """#

    /// One outcome per input, in order.
    static func outcomes(_ inputs: [OracleInput]) throws -> [Outcome] {
        let request = "[" + inputs.map(\.json).joined(separator: ",") + "]"
        let result = try runFiltering(["/usr/bin/python3", "-c", script], input: Array(request.utf8))
        guard result.exitCode == 0 else { throw TestError("python3 tomllib exited \(result.exitCode)") }
        let lines = result.output.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        guard lines.count == inputs.count else {
            throw TestError("python3 answered \(lines.count) of \(inputs.count) documents")
        }
        return lines.map { line in
            line.hasPrefix("rejected: ") ? .rejected(String(line.dropFirst(10))) : .accepted(String(line))
        }
    }
}

/// A value in a short form for table tests: `1`, `1.5`, `"s"`, `true`,
/// `1979-05-27T07:32:00Z`, `[1, 2]`, `{a = 1, "b c" = 2}` (keys in file order).
func compact(_ value: TOMLValue) -> String {
    switch value {
    case .string(let text): return quotedForTest(text)
    case .integer(let int): return String(int)
    case .float(let double): return "\(double)"
    case .boolean(let bool): return String(bool)
    case .offsetDateTime(let date, let time, let minutes):
        guard minutes != 0 else { return "\(date)T\(time)Z" }
        let sign = minutes < 0 ? "-" : "+"
        let hours = abs(minutes) / 60, rest = abs(minutes) % 60
        return "\(date)T\(time)\(sign)\(hours < 10 ? "0" : "")\(hours):\(rest < 10 ? "0" : "")\(rest)"
    case .localDateTime(let date, let time): return "\(date)T\(time)"
    case .localDate(let date): return date.description
    case .localTime(let time): return time.description
    case .array(let elements): return "[" + elements.map(compact).joined(separator: ", ") + "]"
    case .table(let table): return compact(table)
    }
}

func compact(_ table: TOMLTable) -> String {
    "{" + table.entries.map { entry in
        let bare = !entry.key.isEmpty && entry.key.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-"
        }
        return (bare ? entry.key : quotedForTest(entry.key)) + " = " + compact(entry.value)
    }.joined(separator: ", ") + "}"
}

/// Double quotes, with `"`, `\` and non-printable ASCII escaped as TOML writes them.
func quotedForTest(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        case _ where scalar.value < 0x20 || scalar.value == 0x7F:
            let hex = String(scalar.value, radix: 16, uppercase: true)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

/// The TOML corpus: `Tests/Fixtures/toml/{valid,invalid}`.
enum TOMLCorpus {
    static func paths(_ folder: String) throws -> [String] {
        let directory = Fixtures.directory.appendingPathComponent("toml/" + folder)
        return try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".toml") }
            .sorted()
            .map { directory.appendingPathComponent($0).path }
    }

    static func text(_ folder: String, _ name: String) throws -> String {
        try String(contentsOfFile: Fixtures.directory.appendingPathComponent("toml/\(folder)/\(name)").path,
                   encoding: .utf8)
    }
}
