// A value after `=` or in an array: which reader takes it, and the two
// containers, arrays and inline tables.

extension TOMLParser {
    /// The value at `offset`, which sits `depth` levels down.
    mutating func parseValue(depth: Int) throws(TOMLSyntaxError) -> TOMLValue {
        guard depth <= Self.maxDepth else {
            throw fail("values nest more than \(Self.maxDepth) levels deep")
        }
        guard let byte = peek() else { throw fail("expected a value, found end of file") }
        switch byte {
        case UInt8(ascii: "\""):
            let multiline = peek(is: "\"", 1) && peek(is: "\"", 2)
            return .string(multiline ? try parseMultilineBasicString() : try parseBasicString())
        case UInt8(ascii: "'"):
            let multiline = peek(is: "'", 1) && peek(is: "'", 2)
            return .string(multiline ? try parseMultilineLiteralString() : try parseLiteralString())
        case UInt8(ascii: "["):
            return try parseArray(depth: depth)
        case UInt8(ascii: "{"):
            return try parseInlineTable(depth: depth)
        case UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try parseNumberOrDateTime()
        case _ where Self.isBareKeyByte(byte):
            return try parseWord()
        default:
            throw fail("expected a value, found \(describe(offset))")
        }
    }

    /// `true`, `false`, `inf`, `nan`; any other word is most likely a string
    /// without its quotes (`protocol = tcp`), and the message says so.
    private mutating func parseWord() throws(TOMLSyntaxError) -> TOMLValue {
        let start = mark
        while let byte = peek(), Self.isBareKeyByte(byte) { offset += 1 }
        let word = String(decoding: bytes[start.offset..<offset], as: UTF8.self)
        switch word {
        case "true": return .boolean(true)
        case "false": return .boolean(false)
        case "inf": return .float(.infinity)
        case "nan": return .float(.nan)
        default:
            throw fail("expected a value, found \(word); a string needs quotes: \(quoted(word))", at: start)
        }
    }

    /// `[ v, v, ... ]`, over as many lines as it likes, with comments and a
    /// trailing comma allowed; elements of any types.
    private mutating func parseArray(depth: Int) throws(TOMLSyntaxError) -> TOMLValue {
        let open = mark
        offset += 1
        var elements: [TOMLValue] = []
        while true {
            try skipWhitespaceCommentsAndNewlines()
            if peek(is: "]") { break }
            if peek() == nil { throw unterminated("array", "]", open: open) }
            elements.append(try parseValue(depth: depth + 1))
            try skipWhitespaceCommentsAndNewlines()
            if peek(is: ",") {
                offset += 1
            } else if peek(is: "]") {
                break
            } else if peek() == nil {
                throw unterminated("array", "]", open: open)
            } else {
                throw fail("expected ',' or ']' after an array element, found \(describe(offset))")
            }
        }
        offset += 1
        return .array(elements)
    }

    /// `{ k = v, k.l = v }`: on one line, no trailing comma (TOML 1.0), and
    /// closed: nothing may add keys to it afterwards. Dotted keys inside follow
    /// the same rules as at the top level, so it gets a builder of its own.
    private mutating func parseInlineTable(depth: Int) throws(TOMLSyntaxError) -> TOMLValue {
        let open = mark
        offset += 1
        var builder = TOMLTableBuilder()
        skipWhitespace()
        if peek(is: "}") {
            offset += 1
            return .table(TOMLTable())
        }
        while true {
            skipWhitespace()
            try checkInlineTableContinues(open: open)
            let (path, valueAt, value) = try parseKeyValuePair(depth: depth)
            try builder.define(path, value, in: TOMLTableBuilder.root, valueAt: valueAt)
            skipWhitespace()
            if peek(is: "}") { break }
            try checkInlineTableContinues(open: open)
            guard peek(is: ",") else {
                throw fail("expected ',' or '}' in the inline table, found \(describe(offset))")
            }
            offset += 1
            skipWhitespace()
            if peek(is: "}") { throw fail("an inline table cannot end with a comma (TOML 1.0)") }
        }
        offset += 1
        return .table(builder.finish())
    }

    /// The line or the file ending inside `{ ... }`, reported as such rather
    /// than as a missing key.
    private mutating func checkInlineTableContinues(open: Mark) throws(TOMLSyntaxError) {
        if peek() == nil { throw unterminated("inline table", "}", open: open) }
        if peek(is: "\n") || peek(is: "\r") {
            throw fail("an inline table must close on the line it opens on (TOML 1.0); "
                       + "the '{' at \(position(of: open)) has no '}' before the end of the line")
        }
    }

    /// The file ended inside a container opened at `open`.
    mutating func unterminated(_ what: String, _ closer: String, open: Mark) -> TOMLSyntaxError {
        let opened = position(of: open)
        return fail("unterminated \(what): the file ends before the '\(closer)' closing the one opened at \(opened)")
    }
}
