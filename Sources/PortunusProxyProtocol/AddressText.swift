/// Text forms of addresses and ports for the v1 header, written and parsed
/// without Foundation, `inet_ntop` or `inet_pton`, and without allocating.
enum AddressText {
    /// Longest text ``write(_:to:)`` can produce, rounded up to
    /// `INET6_ADDRSTRLEN` so scratch buffers sized by it are always enough.
    static let maxLength = 46

    // MARK: Writing

    /// Writes the address as the v1 header wants it: dotted decimal for IPv4,
    /// RFC 5952 canonical text for IPv6.
    static func write(_ address: ProxyAddress, to writer: inout ByteWriter) {
        switch address.family {
        case .ipv4: writeIPv4(UInt32(truncatingIfNeeded: address.low), to: &writer)
        case .ipv6: writeIPv6(address, to: &writer)
        }
    }

    /// Dotted decimal; no leading zeros, because the PROXY spec forbids them
    /// (they read as octal to some parsers).
    static func writeIPv4(_ value: UInt32, to writer: inout ByteWriter) {
        for index in 0..<4 {
            if index > 0 { writer.write(UInt8(ascii: ".")) }
            writer.writeDecimal(UInt16(truncatingIfNeeded: value >> UInt32(24 - 8 * index) & 0xFF))
        }
    }

    /// RFC 5952: lowercase hex, no leading zeros in a group, the longest run
    /// of two or more zero groups (the first on a tie) becomes "::", and
    /// IPv4-mapped addresses use the mixed `::ffff:a.b.c.d` form (section 5),
    /// which is also what glibc's `inet_ntop` (and so HAProxy) prints.
    static func writeIPv6(_ address: ProxyAddress, to writer: inout ByteWriter) {
        if address.isIPv4Mapped {
            writer.write("::ffff:")
            writeIPv4(UInt32(truncatingIfNeeded: address.low), to: &writer)
            return
        }
        let run = longestZeroRun(address)
        var index = 0
        while index < 8 {
            if index == run.start {
                writer.write("::")
                index += run.length
                continue
            }
            // No separator right after "::", which already ends in one.
            if index > 0 && index != run.start + run.length {
                writer.write(UInt8(ascii: ":"))
            }
            writer.writeHex(address.group(index))
            index += 1
        }
    }

    /// The run of zero groups RFC 5952 section 4.2 compresses; start -1 when
    /// no run of at least two groups exists (a single zero group stays "0").
    private static func longestZeroRun(_ address: ProxyAddress) -> (start: Int, length: Int) {
        var best = (start: -1, length: 0)
        var index = 0
        while index < 8 {
            guard address.group(index) == 0 else {
                index += 1
                continue
            }
            let start = index
            while index < 8 && address.group(index) == 0 { index += 1 }
            let length = index - start
            // Strictly longer, so the first of equal runs wins (section 4.2.3).
            if length >= 2 && length > best.length { best = (start, length) }
        }
        return best
    }

    // MARK: Parsing

    /// Dotted-decimal IPv4: exactly four numbers 0...255, one dot between
    /// each, no leading zeros. Returns the host-order value.
    static func parseIPv4(_ text: UnsafeRawBufferPointer) -> UInt32? {
        var value: UInt32 = 0
        var index = 0
        for part in 0..<4 {
            if part > 0 {
                guard index < text.count, text[index] == UInt8(ascii: ".") else { return nil }
                index += 1
            }
            let start = index
            var number: UInt32 = 0
            while index < text.count, let digit = decimalDigit(text[index]) {
                guard index - start < 3 else { return nil }
                number = number * 10 + UInt32(digit)
                index += 1
            }
            let length = index - start
            guard length > 0, number <= 255 else { return nil }
            guard length == 1 || text[start] != UInt8(ascii: "0") else { return nil }
            value = value << 8 | number
        }
        return index == text.count ? value : nil
    }

    /// IPv6 text as the PROXY spec describes it: groups of one to four hex
    /// digits (either case), at most one "::", 128 bits in total. A dotted
    /// IPv4 tail (`::ffff:1.2.3.4`) is accepted too, because senders that
    /// print with `inet_ntop` emit it for mapped addresses.
    static func parseIPv6(_ text: UnsafeRawBufferPointer) -> (high: UInt64, low: UInt64)? {
        let end = text.count
        var words = SIMD8<UInt16>()
        var count = 0
        var gap: Int?
        var index = 0
        if end >= 2 && text[0] == UInt8(ascii: ":") && text[1] == UInt8(ascii: ":") {
            gap = 0
            index = 2
        }
        while index < end {
            guard count < 8 else { return nil }
            let start = index
            var value: UInt16 = 0
            while index < end, let nibble = hexDigit(text[index]) {
                guard index - start < 4 else { return nil }
                value = value << 4 | UInt16(nibble)
                index += 1
            }
            if index < end && text[index] == UInt8(ascii: ".") {
                // The IPv4 tail must be the last 32 bits of the text.
                guard count <= 6,
                      let v4 = parseIPv4(UnsafeRawBufferPointer(rebasing: text[start..<end]))
                else { return nil }
                words[count] = UInt16(truncatingIfNeeded: v4 >> 16)
                words[count + 1] = UInt16(truncatingIfNeeded: v4)
                count += 2
                break
            }
            guard index > start else { return nil }
            words[count] = value
            count += 1
            if index == end { break }
            guard text[index] == UInt8(ascii: ":") else { return nil }
            index += 1
            if index < end && text[index] == UInt8(ascii: ":") {
                guard gap == nil else { return nil }
                gap = count
                index += 1
            } else if index == end {
                return nil
            }
        }
        if let gap {
            // "::" stands for at least one zero group.
            guard count < 8 else { return nil }
            let tail = count - gap
            var expanded = SIMD8<UInt16>()
            for slot in 0..<gap { expanded[slot] = words[slot] }
            for slot in 0..<tail { expanded[8 - tail + slot] = words[gap + slot] }
            words = expanded
        } else {
            guard count == 8 else { return nil }
        }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for slot in 0..<4 {
            high = high << 16 | UInt64(words[slot])
            low = low << 16 | UInt64(words[slot + 4])
        }
        return (high, low)
    }

    /// A decimal port 0...65535 with no leading zeros.
    static func parsePort(_ text: UnsafeRawBufferPointer) -> UInt16? {
        guard !text.isEmpty, text.count <= 5 else { return nil }
        guard text.count == 1 || text[0] != UInt8(ascii: "0") else { return nil }
        var value: UInt32 = 0
        for byte in text {
            guard let digit = decimalDigit(byte) else { return nil }
            value = value * 10 + UInt32(digit)
        }
        return value <= 65_535 ? UInt16(value) : nil
    }

    @inline(__always)
    private static func decimalDigit(_ byte: UInt8) -> UInt8? {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") ? byte - UInt8(ascii: "0") : nil
    }

    @inline(__always)
    private static func hexDigit(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
