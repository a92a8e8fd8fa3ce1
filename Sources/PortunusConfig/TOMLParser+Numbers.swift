// Integers (decimal, 0x, 0o, 0b, underscores between digits) and floats
// (fraction, exponent, inf, nan). The syntax is checked here byte by byte;
// the standard library then converts the digits (`Int64(_:)`, and
// `Double(_:)`, which rounds correctly, as Python's `float` does).

extension TOMLParser {
    /// A number, date or time: dates start with four digits and '-', times with two and ':'.
    mutating func parseNumberOrDateTime() throws(TOMLSyntaxError) -> TOMLValue {
        if isDigits(at: offset, count: 4) && peek(is: "-", 4) { return try parseDateOrDateTime() }
        if isDigits(at: offset, count: 2) && peek(is: ":", 2) { return .localTime(try parseTime()) }
        return try parseNumber()
    }

    private mutating func parseNumber() throws(TOMLSyntaxError) -> TOMLValue {
        let start = mark
        let signed = peek(is: "+") || peek(is: "-")
        if signed { offset += 1 }
        if let byte = peek(), (byte | 0x20) >= UInt8(ascii: "a"), (byte | 0x20) <= UInt8(ascii: "z") {
            return try parseSpecialFloat(negative: bytes[start.offset] == UInt8(ascii: "-"), start: start)
        }
        if peek(is: "0"), let radix = Self.radix(peek(1)) {
            if signed {
                throw fail("a hexadecimal, octal or binary integer cannot have a sign", at: start)
            }
            offset += 2
            return .integer(try parseRadixInteger(radix, start: start))
        }
        try scanDigits(after: signed ? "after the sign" : "", leadingZeros: false)
        var isFloat = false
        if peek(is: ".") {
            offset += 1
            try scanDigits(after: "after '.'", leadingZeros: true)
            isFloat = true
        }
        if peek(is: "e") || peek(is: "E") {
            offset += 1
            if peek(is: "+") || peek(is: "-") { offset += 1 }
            try scanDigits(after: "in the exponent", leadingZeros: true)
            isFloat = true
        }
        let end = mark
        try checkEnd(of: "number", start: start)
        let text = String(decoding: bytes[start.offset..<end.offset].lazy.filter { $0 != UInt8(ascii: "_") },
                          as: UTF8.self)
        if isFloat {
            // The syntax above is a subset of what Double(_:) reads, so this cannot fail;
            // beyond Double's range it gives ±inf or 0, as Python's float() does.
            guard let value = Double(text) else { throw fail("\(text) is not a float", at: start) }
            return .float(value)
        }
        guard let value = Int64(text) else {
            throw fail("\(text) does not fit in a 64-bit integer "
                       + "(-9223372036854775808 to 9223372036854775807)", at: end)
        }
        return .integer(value)
    }

    /// `inf` or `nan` after a sign; any other word is named in the error.
    private mutating func parseSpecialFloat(negative: Bool, start: Mark) throws(TOMLSyntaxError) -> TOMLValue {
        let wordStart = offset
        while let byte = peek(), Self.isBareKeyByte(byte) { offset += 1 }
        let word = String(decoding: bytes[wordStart..<offset], as: UTF8.self)
        switch word {
        case "inf": return .float(negative ? -.infinity : .infinity)
        case "nan": return .float(negative ? -.nan : .nan)
        default: throw fail("expected a number after the sign, found \(word)", at: start)
        }
    }

    private static func radix(_ byte: UInt8?) -> Int? {
        switch byte {
        case UInt8(ascii: "x"): 16
        case UInt8(ascii: "o"): 8
        case UInt8(ascii: "b"): 2
        default: nil
        }
    }

    /// The digits after `0x`, `0o` or `0b` (leading zeros allowed); at most `Int64.max`.
    private mutating func parseRadixInteger(_ radix: Int, start: Mark) throws(TOMLSyntaxError) -> Int64 {
        let name = radix == 16 ? "hexadecimal" : radix == 8 ? "octal" : "binary"
        var value: UInt64 = 0
        var overflow = false
        var expectDigit = true
        while let byte = peek() {
            if let digit = Self.hexDigit(byte), Int(digit) < radix {
                let (shifted, over1) = value.multipliedReportingOverflow(by: UInt64(radix))
                let (sum, over2) = shifted.addingReportingOverflow(UInt64(digit))
                value = sum
                overflow = overflow || over1 || over2
                expectDigit = false
            } else if byte == UInt8(ascii: "_"), !expectDigit {
                expectDigit = true
            } else {
                break
            }
            offset += 1
        }
        if expectDigit { throw fail("expected a \(name) digit, found \(describe(offset))") }
        let end = mark
        try checkEnd(of: "\(name) integer", start: start)
        guard !overflow, value <= UInt64(Int64.max) else {
            let text = String(decoding: bytes[start.offset..<end.offset], as: UTF8.self)
            throw fail("\(text) does not fit in a 64-bit integer (at most 9223372036854775807)", at: end)
        }
        return Int64(value)
    }

    /// Decimal digits with single underscores between them. `leadingZeros`
    /// false is the integer part's rule: `0` alone, or no leading `0`.
    private mutating func scanDigits(after place: String, leadingZeros: Bool) throws(TOMLSyntaxError) {
        guard let first = peek(), Self.isDigit(first) else {
            throw fail("expected a digit\(place.isEmpty ? "" : " " + place), found \(describe(offset))")
        }
        if !leadingZeros, first == UInt8(ascii: "0"), let next = peek(1), Self.isDigit(next) || next == UInt8(ascii: "_") {
            throw fail("leading zeros are not allowed in a decimal number")
        }
        offset += 1
        while let byte = peek() {
            if byte == UInt8(ascii: "_") {
                guard let next = peek(1), Self.isDigit(next) else {
                    throw fail("an underscore in a number must stand between two digits")
                }
            } else if !Self.isDigit(byte) {
                return
            }
            offset += 1
        }
    }

    /// A number or date runs up to whitespace, a comment, a line end or a
    /// separator; anything else glued to it (`1.2.3`, `0b102`, `1x`) makes it invalid.
    mutating func checkEnd(of what: String, start: Mark) throws(TOMLSyntaxError) {
        guard let byte = peek() else { return }
        switch byte {
        case UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "+"), UInt8(ascii: "-"):
            break
        case _ where Self.isBareKeyByte(byte):
            break
        default:
            return
        }
        let literal = String(decoding: bytes[start.offset..<offset], as: UTF8.self)
        throw fail("invalid \(what): \(describe(offset)) cannot follow \(literal)")
    }

    static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    func isDigits(at index: Int, count: Int) -> Bool {
        index + count <= bytes.count && bytes[index..<(index + count)].allSatisfy(Self.isDigit)
    }
}
