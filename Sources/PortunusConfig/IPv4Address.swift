// IPv4 literals in targets. Parsed strictly (four decimal octets, no leading
// zeros): inet_aton would read "010.0.0.1" as octal 8.0.0.1 and "10.1" as
// 10.0.0.1, silently dialling a host the operator did not write.

/// An IPv4 address; the C counterpart is `struct in_addr`.
public struct IPv4Address: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The address as a host-order integer whose most significant byte is the
    /// first octet (`10.0.0.1` is `0x0A00_0001`); `value.bigEndian` is `s_addr`.
    public let value: UInt32

    /// Creates `a.b.c.d`.
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Creates an address from its host-order integer (see `value`).
    public init(value: UInt32) {
        self.value = value
    }

    /// Parses a dotted quad such as `"192.0.2.1"`; nil unless it is exactly
    /// four decimal octets 0-255 without leading zeros.
    public init?(_ text: some StringProtocol) {
        guard case .success(let address) = IPv4Address.parse(Substring(text)) else { return nil }
        self = address
    }

    /// The four octets in network order.
    public var octets: [UInt8] {
        [UInt8(truncatingIfNeeded: value >> 24), UInt8(truncatingIfNeeded: value >> 16),
         UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
    }

    /// Dotted-quad form, `a.b.c.d`.
    public var description: String {
        octets.map(String.init).joined(separator: ".")
    }

    /// Parses a dotted quad, explaining a rejection in words an operator can act on.
    static func parse(_ text: Substring) -> Result<IPv4Address, HostSyntaxError> {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else {
            return .failure(HostSyntaxError(
                "\(quoted(text)) is not an IPv4 address: expected 4 dot-separated octets, found \(parts.count)"))
        }
        var value: UInt32 = 0
        for part in parts {
            switch parseOctet(part) {
            case .success(let octet): value = value << 8 | UInt32(octet)
            case .failure(let reason):
                return .failure(HostSyntaxError("\(quoted(text)) is not an IPv4 address: \(reason.message)"))
            }
        }
        return .success(IPv4Address(value: value))
    }

    private static func parseOctet(_ part: Substring) -> Result<UInt8, HostSyntaxError> {
        let digits = part.utf8
        guard !digits.isEmpty, digits.count <= 3,
              digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            return .failure(HostSyntaxError("octet \(quoted(part)) is not a decimal number 0-255"))
        }
        guard digits.count == 1 || digits.first != UInt8(ascii: "0") else {
            return .failure(HostSyntaxError(
                "octet \(quoted(part)) has a leading zero, which some resolvers read as octal; drop the zero"))
        }
        let number = digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        guard number <= 255 else {
            return .failure(HostSyntaxError("octet \(number) is out of range 0-255"))
        }
        return .success(UInt8(number))
    }
}

/// Why a host string was rejected; `message` is shown to the operator as is.
struct HostSyntaxError: Error, Equatable {
    let message: String
    init(_ message: String) { self.message = message }
}
