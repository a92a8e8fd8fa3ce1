// Inclusive port ranges: `listen_ports = "8000-8009"`, `target = "h:9000-9009"`.

/// An inclusive, non-empty range of TCP/UDP ports, `lower...upper`.
///
/// A single port is the range `p...p`. Ranges map onto each other by offset:
/// listen port `lower + k` forwards to the target range's `port(atOffset: k)`.
public struct PortRange: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// First port of the range.
    public let lower: UInt16
    /// Last port of the range (inclusive).
    public let upper: UInt16

    /// Creates `lower...upper`. Traps if `lower > upper`. Port 0 is allowed
    /// here (embedders may want an ephemeral port) but never in a file.
    public init(lower: UInt16, upper: UInt16) {
        precondition(lower <= upper, "port range \(lower)-\(upper) is inverted")
        self.lower = lower
        self.upper = upper
    }

    /// Creates the one-port range `port...port`.
    public init(port: UInt16) {
        self.init(lower: port, upper: port)
    }

    /// Number of ports in the range, 1...65536.
    public var count: Int { Int(upper) - Int(lower) + 1 }

    /// Whether the two ranges share at least one port.
    public func overlaps(_ o: PortRange) -> Bool {
        lower <= o.upper && o.lower <= upper
    }

    /// Whether `port` lies in the range.
    public func contains(_ port: UInt16) -> Bool {
        lower <= port && port <= upper
    }

    /// The port `offset` places after `lower`; traps unless `0 <= offset < count`.
    public func port(atOffset offset: Int) -> UInt16 {
        precondition(offset >= 0 && offset < count, "offset \(offset) outside \(self)")
        return UInt16(Int(lower) + offset)
    }

    /// Offset of `port` in the range, the inverse of `port(atOffset:)`;
    /// nil when the port is outside.
    public func offset(of port: UInt16) -> Int? {
        contains(port) ? Int(port) - Int(lower) : nil
    }

    /// `"p"` for one port, `"lo-hi"` otherwise: the syntax the file uses.
    public var description: String {
        lower == upper ? "\(lower)" : "\(lower)-\(upper)"
    }
}

/// Why a port or port-range string was rejected; each case maps to one
/// stable diagnostic code.
enum PortSyntaxError: Error, Equatable {
    /// Not `p` or `lo-hi` with decimal digits → `validation.port_range_malformed`.
    case malformed(String)
    /// A port of 0 or above 65535 → `validation.port_out_of_range`.
    case outOfRange(String)
    /// `lo > hi` → `validation.port_range_inverted`.
    case inverted(String)

    var code: String {
        switch self {
        case .malformed: ConfigDiagnostic.Code.portRangeMalformed
        case .outOfRange: ConfigDiagnostic.Code.portOutOfRange
        case .inverted: ConfigDiagnostic.Code.portRangeInverted
        }
    }

    var message: String {
        switch self {
        case .malformed(let m), .outOfRange(let m), .inverted(let m): m
        }
    }
}

extension PortRange {
    /// Parses `"p"` or `"lo-hi"` of decimal ports. Each number may carry
    /// surrounding spaces and a leading `+`, because Portunus trims and then
    /// uses Rust's `u16::from_str`, which takes both: files it accepts must
    /// keep working. Anything else (hex, inner spaces, a third part) is refused.
    static func parse(_ text: Substring) -> Result<PortRange, PortSyntaxError> {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false).map(number)
        let expected = "expected a port \"p\" or a range \"lo-hi\" of decimal ports 1-65535"
        guard parts.count <= 2, parts.allSatisfy(isDecimal) else {
            return .failure(.malformed("\(quoted(text)) is not a port or port range; \(expected)"))
        }
        var ports: [UInt16] = []
        for part in parts {
            switch validatePort(decimalValue(part)) {
            case .success(let port): ports.append(port)
            case .failure: return .failure(.outOfRange(
                "port \(part) in \(quoted(text)) is out of range; ports are 1-65535"))
            }
        }
        let lower = ports[0], upper = ports[ports.count - 1]
        guard lower <= upper else {
            return .failure(.inverted("port range \(quoted(text)) is inverted; write \(upper)-\(lower)"))
        }
        return .success(PortRange(lower: lower, upper: upper))
    }

    /// Checks a TOML integer port (`listen_port`, `port`): 1...65535.
    static func validatePort(_ value: Int) -> Result<UInt16, PortSyntaxError> {
        guard value >= 1, value <= Int(UInt16.max) else {
            return .failure(.outOfRange("port \(value) is out of range; ports are 1-65535"))
        }
        return .success(UInt16(value))
    }

    /// One side of a range without its surrounding blanks and optional `+`.
    private static func number(_ part: Substring) -> Substring {
        var part = part.drop { $0 == " " || $0 == "\t" }
        while let last = part.last, last == " " || last == "\t" { part = part.dropLast() }
        return part.first == "+" ? part.dropFirst() : part
    }

    private static func isDecimal(_ s: Substring) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    /// Value of an all-digit string, saturating so that "99999999999999999999"
    /// is reported as out of range rather than malformed.
    private static func decimalValue(_ s: Substring) -> Int {
        var value = 0
        for byte in s.utf8 {
            value = min(value * 10 + Int(byte - UInt8(ascii: "0")), 1 << 20)
        }
        return value
    }
}
