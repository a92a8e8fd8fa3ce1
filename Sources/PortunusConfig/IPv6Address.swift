// IPv6 literals in targets (RFC 4291 §2.2 text forms), printed back in the
// canonical RFC 5952 form so logs and stats show one spelling per address.

/// An IPv6 address; the C counterpart is `struct in6_addr`.
public struct IPv6Address: Sendable, Equatable, Hashable, CustomStringConvertible {
    // Two words rather than a 16-tuple: tuples are not Hashable, and this
    // keeps equality and hashing synthesized.
    private let high: UInt64
    private let low: UInt64

    /// Creates an address from its 16 octets in network order; traps unless
    /// there are exactly 16.
    public init(octets: [UInt8]) {
        precondition(octets.count == 16, "an IPv6 address has 16 octets, not \(octets.count)")
        high = octets[0..<8].reduce(0) { $0 << 8 | UInt64($1) }
        low = octets[8..<16].reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// Parses an unbracketed IPv6 literal such as `"2001:db8::1"` or
    /// `"::ffff:192.0.2.1"`; nil if it is not one. Zone IDs (`%eth0`) are
    /// not accepted.
    public init?(_ text: some StringProtocol) {
        guard case .success(let address) = IPv6Address.parse(Substring(text)) else { return nil }
        self = address
    }

    /// The 16 octets in network order.
    public var octets: [UInt8] {
        (0..<16).map { i in
            let word = i < 8 ? high : low
            return UInt8(truncatingIfNeeded: word >> (UInt64(7 - i % 8) * 8))
        }
    }

    /// The eight 16-bit groups, most significant first.
    var words: [UInt16] {
        (0..<8).map { i in
            let word = i < 4 ? high : low
            return UInt16(truncatingIfNeeded: word >> (UInt64(3 - i % 4) * 16))
        }
    }

    /// Whether this is an IPv4-mapped address, `::ffff:a.b.c.d`.
    public var isIPv4Mapped: Bool {
        high == 0 && low >> 32 == 0xFFFF
    }

    /// RFC 5952 text: lower-case hex, no leading zeros, the longest run (the
    /// first on a tie) of two or more zero groups as `::`, and IPv4-mapped
    /// addresses as `::ffff:a.b.c.d` (§5).
    public var description: String {
        if isIPv4Mapped {
            return "::ffff:" + IPv4Address(value: UInt32(truncatingIfNeeded: low)).description
        }
        let groups = words
        let run = IPv6Address.longestZeroRun(groups)
        func hex(_ slice: ArraySlice<UInt16>) -> String {
            slice.map { String($0, radix: 16) }.joined(separator: ":")
        }
        guard let run, run.count >= 2 else { return hex(groups[...]) }
        return hex(groups[..<run.lowerBound]) + "::" + hex(groups[run.upperBound...])
    }

    private static func longestZeroRun(_ groups: [UInt16]) -> Range<Int>? {
        var best: Range<Int>?
        var start: Int?
        for i in 0...groups.count {
            if i < groups.count, groups[i] == 0 {
                if start == nil { start = i }
            } else if let s = start {
                if i - s > best?.count ?? 0 { best = s..<i }  // strict: first run wins a tie
                start = nil
            }
        }
        return best
    }
}

extension IPv6Address {
    /// Parses an unbracketed literal, explaining a rejection.
    static func parse(_ text: Substring) -> Result<IPv6Address, HostSyntaxError> {
        let invalid = HostSyntaxError("\(quoted(text)) is not a valid IPv6 address")
        if text.contains("%") {
            return .failure(HostSyntaxError(
                "\(quoted(text)): IPv6 zone IDs (%interface) are not supported in targets"))
        }
        let bytes = Array(text.utf8)
        var doubleColon: Int?
        for i in bytes.indices.dropLast() where bytes[i] == UInt8(ascii: ":") && bytes[i + 1] == UInt8(ascii: ":") {
            // A second "::" (or ":::") makes the number of elided groups ambiguous.
            guard doubleColon == nil else { return .failure(invalid) }
            doubleColon = i
        }
        guard !bytes.isEmpty else { return .failure(invalid) }
        var words: [UInt16]
        if let dc = doubleColon {
            guard let head = groups(bytes[..<dc], ipv4Tail: false),
                  let tail = groups(bytes[(dc + 2)...], ipv4Tail: true),
                  head.count + tail.count <= 7 else { return .failure(invalid) }
            words = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard let all = groups(bytes[...], ipv4Tail: true), all.count == 8 else {
                return .failure(invalid)
            }
            words = all
        }
        var octets: [UInt8] = []
        octets.reserveCapacity(16)
        for word in words { octets += [UInt8(word >> 8), UInt8(word & 0xFF)] }
        return .success(IPv6Address(octets: octets))
    }

    /// Colon-separated hex groups of one side of `::`; the last may be a
    /// dotted quad (two groups). nil on any malformed group. An empty side
    /// has no groups.
    private static func groups(_ bytes: ArraySlice<UInt8>, ipv4Tail: Bool) -> [UInt16]? {
        if bytes.isEmpty { return [] }
        let pieces = bytes.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        var words: [UInt16] = []
        for (index, piece) in pieces.enumerated() {
            if ipv4Tail, index == pieces.count - 1, piece.contains(UInt8(ascii: ".")) {
                let text = Substring(decoding: piece, as: UTF8.self)
                guard case .success(let v4) = IPv4Address.parse(text) else { return nil }
                words += [UInt16(v4.value >> 16), UInt16(v4.value & 0xFFFF)]
                continue
            }
            guard (1...4).contains(piece.count) else { return nil }
            var word: UInt16 = 0
            for byte in piece {
                guard let digit = hexDigit(byte) else { return nil }
                word = word << 4 | digit
            }
            words.append(word)
        }
        return words
    }

    private static func hexDigit(_ byte: UInt8) -> UInt16? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt16(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt16(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt16(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}
