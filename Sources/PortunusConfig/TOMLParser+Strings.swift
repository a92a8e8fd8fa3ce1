// TOML's four string forms: basic "..." (escapes), literal '...' (none), and
// their multi-line """...""" and '''...''' forms.

extension TOMLParser {
    /// `"..."`: one line; escapes resolved.
    mutating func parseBasicString() throws(TOMLSyntaxError) -> String {
        offset += 1
        var text: [UInt8] = []
        while true {
            guard let byte = peek() else {
                throw fail("unterminated string: the file ends before its closing '\"'")
            }
            switch byte {
            case UInt8(ascii: "\""):
                offset += 1
                return String(decoding: text, as: UTF8.self)
            case UInt8(ascii: "\\"):
                try parseEscape(into: &text)
            case 0x0A, 0x0D:
                throw fail("unterminated string: a \"...\" string must close on the line it opens on "
                           + "(\"\"\"...\"\"\" may span lines)")
            case _ where Self.isControl(byte):
                throw controlCharacterInBasicString(byte)
            default:
                text.append(byte)
                offset += 1
            }
        }
    }

    /// `"""..."""`: a newline right after the opening quotes is dropped; a
    /// backslash at the end of a line drops it and the whitespace that follows;
    /// CR LF is read as LF, as Python's `tomllib` does.
    mutating func parseMultilineBasicString() throws(TOMLSyntaxError) -> String {
        let open = mark
        offset += 3
        _ = try consumeNewline()
        var text: [UInt8] = []
        while true {
            guard let byte = peek() else { throw unterminated("multi-line string", "\"\"\"", open: open) }
            switch byte {
            case UInt8(ascii: "\""):
                if closeMultiline(quote: byte, into: &text) { return String(decoding: text, as: UTF8.self) }
            case UInt8(ascii: "\\"):
                if try !skipLineEndingBackslash() { try parseEscape(into: &text) }
            case 0x0A, 0x0D:
                _ = try consumeNewline()
                text.append(0x0A)
            case _ where Self.isControl(byte):
                throw controlCharacterInBasicString(byte)
            default:
                text.append(byte)
                offset += 1
            }
        }
    }

    /// A control character inside a basic string: it must be written as an escape.
    private mutating func controlCharacterInBasicString(_ byte: UInt8) -> TOMLSyntaxError {
        fail("\(describe(offset)) is not allowed in a string; write it as an escape such as \\u" + hex4(UInt32(byte)))
    }

    /// `'...'`: one line, taken as written.
    mutating func parseLiteralString() throws(TOMLSyntaxError) -> String {
        offset += 1
        let start = offset
        while true {
            guard let byte = peek() else {
                throw fail("unterminated string: the file ends before its closing \"'\"")
            }
            switch byte {
            case UInt8(ascii: "'"):
                offset += 1
                return String(decoding: bytes[start..<offset - 1], as: UTF8.self)
            case 0x0A, 0x0D:
                throw fail("unterminated string: a '...' string must close on the line it opens on "
                           + "('''...''' may span lines)")
            case _ where Self.isControl(byte):
                throw fail("\(describe(offset)) is not allowed in a literal string (which has no escapes)")
            default:
                offset += 1
            }
        }
    }

    /// `'''...'''`: taken as written, but for the newline right after the
    /// opening quotes (dropped) and CR LF (read as LF).
    mutating func parseMultilineLiteralString() throws(TOMLSyntaxError) -> String {
        let open = mark
        offset += 3
        _ = try consumeNewline()
        var text: [UInt8] = []
        while true {
            guard let byte = peek() else { throw unterminated("multi-line string", "'''", open: open) }
            switch byte {
            case UInt8(ascii: "'"):
                if closeMultiline(quote: byte, into: &text) { return String(decoding: text, as: UTF8.self) }
            case 0x0A, 0x0D:
                _ = try consumeNewline()
                text.append(0x0A)
            case _ where Self.isControl(byte):
                throw fail("\(describe(offset)) is not allowed in a literal string (which has no escapes)")
            default:
                text.append(byte)
                offset += 1
            }
        }
    }

    /// A run of `quote` inside a multi-line string: fewer than three are text;
    /// three or more close the string, the one or two beyond three being the
    /// string's last characters (`""""` ends a string with `"`). True when closed.
    private mutating func closeMultiline(quote: UInt8, into text: inout [UInt8]) -> Bool {
        var run = 0
        while run < 5, peek(run) == quote { run += 1 }
        offset += run
        guard run >= 3 else {
            text.append(contentsOf: repeatElement(quote, count: run))
            return false
        }
        text.append(contentsOf: repeatElement(quote, count: run - 3))
        return true
    }

    /// A backslash, optional whitespace and a newline in a `"""` string:
    /// skipped with every whitespace and newline after it. False (nothing
    /// consumed) when the backslash starts an escape instead.
    private mutating func skipLineEndingBackslash() throws(TOMLSyntaxError) -> Bool {
        var end = offset + 1
        while end < bytes.count, bytes[end] == 0x20 || bytes[end] == 0x09 { end += 1 }
        guard end < bytes.count, bytes[end] == 0x0A || bytes[end] == 0x0D else { return false }
        offset = end
        while true {
            skipWhitespace()
            if try !consumeNewline() { return true }
        }
    }

    /// `\n`, `\"`, `\uXXXX`...: TOML 1.0's escapes, the character appended as UTF-8.
    private mutating func parseEscape(into text: inout [UInt8]) throws(TOMLSyntaxError) {
        let start = mark
        offset += 1
        guard let code = peek() else { throw fail("unterminated string: the file ends in an escape") }
        let simple: UInt8? = switch code {
        case UInt8(ascii: "b"): 0x08
        case UInt8(ascii: "t"): 0x09
        case UInt8(ascii: "n"): 0x0A
        case UInt8(ascii: "f"): 0x0C
        case UInt8(ascii: "r"): 0x0D
        case UInt8(ascii: "\""): 0x22
        case UInt8(ascii: "\\"): 0x5C
        default: nil
        }
        if let simple {
            text.append(simple)
            offset += 1
            return
        }
        guard code == UInt8(ascii: "u") || code == UInt8(ascii: "U") else {
            let shown = code == 0x20 || code == 0x09 ? "a backslash followed by whitespace (allowed only at the end "
                + "of a line in a \"\"\" string)" : "\\" + describe(offset).filter { $0 != "'" }
            throw fail("invalid escape: \(shown); TOML 1.0 has \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX "
                       + "and \\UXXXXXXXX", at: start)
        }
        let digits = code == UInt8(ascii: "u") ? 4 : 8
        offset += 1
        var value: UInt32 = 0
        for _ in 0..<digits {
            guard let byte = peek(), let digit = Self.hexDigit(byte) else {
                throw fail("expected \(digits) hex digits after \\\(Unicode.Scalar(code)), found \(describe(offset))")
            }
            value = value << 4 | UInt32(digit)
            offset += 1
        }
        guard let scalar = Unicode.Scalar(value) else {
            throw fail("\\\(Unicode.Scalar(code))\(String(bytes[(start.offset + 2)..<offset].map { Character(Unicode.Scalar($0)) })) "
                       + "is not a Unicode scalar value (surrogates D800-DFFF and values above 10FFFF are not)", at: start)
        }
        UTF8.encode(scalar) { text.append($0) }
    }

    static func hexDigit(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
