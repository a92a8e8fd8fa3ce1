// TOML 1.0 text -> TOMLTable, in one pass over the UTF-8 bytes with no
// Foundation: the document's lines, headers, keys and key/value pairs. Values
// are read in TOMLParser+Values.swift (arrays, inline tables, words),
// +Strings, +Numbers and +DateTime; the table rules are TOMLTableBuilder's.
//
// Every syntax rule is TOML 1.0's (https://toml.io/en/v1.0.0), checked
// against Python's `tomllib` in the tests. The one addition: a UTF-8 byte
// order mark at the start is skipped, as toml++ did, so a file an editor
// saved with one keeps loading.

/// Reads TOML 1.0 text.
///
/// ```swift
/// let table = try TOMLParser.parse("port = 8080\n")
/// table["port"]   // .integer(8080)
/// ```
/// The first syntax error stops the parse and is thrown with its line and
/// column; there is no partial result.
public struct TOMLParser {
    /// How deep tables and arrays may nest, counting each key part, array and
    /// inline table. TOML sets no limit; this one keeps a hostile file
    /// (`[[[[[[...`) from exhausting the stack of the recursive reader and of
    /// the values' release. A config needs 4 levels.
    public static let maxDepth = 100

    /// Reads `text` (a whole document).
    ///
    /// - Throws: `TOMLSyntaxError` for the first thing that is not TOML 1.0,
    ///   at the position of the offending character.
    public static func parse(_ text: String) throws(TOMLSyntaxError) -> TOMLTable {
        var parser = TOMLParser(bytes: Array(text.utf8))
        return try parser.parseDocument()
    }

    let bytes: [UInt8]
    /// The next byte to read.
    var offset = 0
    /// The line `offset` is on, and where that line starts.
    var line = 1
    var lineStart = 0
    /// The last column computed, so positions asked for in file order (every
    /// key's) cost their distance from the previous one, not from the line's
    /// start: a long one-line inline table stays linear.
    private var columnCache = (lineStart: -1, offset: 0, column: 1)

    init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// A place in the text to come back to for a position.
    struct Mark {
        let offset: Int
        let line: Int
        let lineStart: Int
    }

    var mark: Mark { Mark(offset: offset, line: line, lineStart: lineStart) }

    mutating func position(of mark: Mark) -> TOMLPosition {
        precondition(mark.offset <= bytes.count, "a mark past the end of the text")
        var from = mark.lineStart, column = 1
        if columnCache.lineStart == mark.lineStart, columnCache.offset <= mark.offset {
            from = columnCache.offset
            column = columnCache.column
        }
        // One column per scalar: count every byte that does not continue a UTF-8 sequence.
        for index in from..<mark.offset where bytes[index] & 0xC0 != 0x80 { column += 1 }
        columnCache = (mark.lineStart, mark.offset, column)
        return TOMLPosition(line: mark.line, column: column)
    }

    /// A syntax error at `mark`, or at the current byte.
    mutating func fail(_ message: String, at mark: Mark? = nil) -> TOMLSyntaxError {
        TOMLSyntaxError(position: position(of: mark ?? self.mark), message: message)
    }

    // MARK: Bytes

    func peek(_ ahead: Int = 0) -> UInt8? {
        offset + ahead < bytes.count ? bytes[offset + ahead] : nil
    }

    func peek(is ascii: Unicode.Scalar, _ ahead: Int = 0) -> Bool {
        peek(ahead) == UInt8(ascii: ascii)
    }

    mutating func advance(_ count: Int = 1) {
        offset += count
    }

    /// Steps over the LF at `offset`, starting a new line.
    mutating func consumeLineFeed() {
        offset += 1
        line += 1
        lineStart = offset
    }

    /// A newline (LF or CR LF) at `offset`: consumed, true. A CR without its LF is an error.
    mutating func consumeNewline() throws(TOMLSyntaxError) -> Bool {
        if peek(is: "\n") {
            consumeLineFeed()
            return true
        }
        guard peek(is: "\r") else { return false }
        guard peek(is: "\n", 1) else { throw fail("a carriage return (U+000D) must be followed by a line feed") }
        offset += 1
        consumeLineFeed()
        return true
    }

    mutating func skipWhitespace() {
        while let byte = peek(), byte == 0x20 || byte == 0x09 { offset += 1 }
    }

    /// Whitespace, comments and newlines: what may stand between array elements.
    mutating func skipWhitespaceCommentsAndNewlines() throws(TOMLSyntaxError) {
        while true {
            skipWhitespace()
            if peek(is: "#") {
                try skipComment()
            } else if try !consumeNewline() {
                return
            }
        }
    }

    /// From `#` to the end of the line (not consumed). Comments may hold any
    /// text but control characters other than tab.
    mutating func skipComment() throws(TOMLSyntaxError) {
        offset += 1
        while let byte = peek() {
            if byte == 0x0A || byte == 0x0D { return }  // a CR without its LF: the caller's consumeNewline says so
            if Self.isControl(byte) { throw fail("\(describe(offset)) is not allowed in a comment") }
            offset += 1
        }
    }

    /// TOML forbids these outside escapes: U+0000-U+001F except tab, and U+007F.
    static func isControl(_ byte: UInt8) -> Bool {
        (byte < 0x20 && byte != 0x09) || byte == 0x7F
    }

    static func isBareKeyByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"): true
        default: false
        }
    }

    /// The character at `index` for a message: `'='`, `end of line`, `U+0007 (a control character)`.
    func describe(_ index: Int) -> String {
        guard index < bytes.count else { return "end of file" }
        let byte = bytes[index]
        switch byte {
        case 0x0A: return "end of line"
        case 0x0D where index + 1 < bytes.count && bytes[index + 1] == 0x0A: return "end of line"
        case 0x20: return "a space"
        case 0x09: return "a tab"
        case _ where Self.isControl(byte): return "U+" + hex4(UInt32(byte)) + " (a control character)"
        case 0x21...0x7E: return "'" + String(Unicode.Scalar(byte)) + "'"
        default:
            // Valid UTF-8 (the text came from a String), so the first scalar decodes whole.
            let scalar = String(decoding: bytes[index..<min(index + 4, bytes.count)], as: UTF8.self)
                .unicodeScalars.first ?? "?"
            return "'" + String(scalar) + "' (U+" + hex4(scalar.value) + ")"
        }
    }

    /// At least four upper-case hex digits, as U+ notation writes them.
    func hex4(_ value: UInt32) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    // MARK: Document

    private mutating func parseDocument() throws(TOMLSyntaxError) -> TOMLTable {
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) {
            offset = 3
            lineStart = 3
        }
        var builder = TOMLTableBuilder()
        var table = TOMLTableBuilder.root
        var section: [TOMLTableBuilder.KeyPart] = []
        while true {
            skipWhitespace()
            guard let byte = peek() else { break }
            var what = "a comment"  // a blank or comment line: only its end is left to read
            switch byte {
            case UInt8(ascii: "#"), 0x0A, 0x0D:
                break
            case UInt8(ascii: "["):
                (table, section) = try parseHeader(&builder)
                what = "the table header"
            default:
                let (path, valueAt, value) = try parseKeyValuePair(depth: section.count)
                try builder.define(path, value, in: table, section: section, valueAt: valueAt)
                what = "the value"
            }
            try endLine(after: what)
        }
        return builder.finish()
    }

    /// What may follow an expression: whitespace, a comment, then a newline or the end.
    private mutating func endLine(after what: String) throws(TOMLSyntaxError) {
        skipWhitespace()
        if peek(is: "#") { try skipComment() }
        guard peek() != nil, try !consumeNewline() else { return }
        throw fail("expected the end of the line after \(what), found \(describe(offset))")
    }

    /// `[a.b]` or `[[a.b]]`: the table that the following key/value pairs go into, and its path.
    private mutating func parseHeader(_ builder: inout TOMLTableBuilder)
        throws(TOMLSyntaxError) -> (TOMLTableBuilder.TableID, [TOMLTableBuilder.KeyPart]) {
        let headerAt = position(of: mark)
        offset += 1
        let isArray = peek(is: "[")
        if isArray { offset += 1 }
        skipWhitespace()
        let path = try parseKey()
        let close = isArray ? "']]' to close the array-of-tables header [[\(TOMLTableBuilder.dotted(path))]]"
            : "']' to close the table header [\(TOMLTableBuilder.dotted(path))]"
        for _ in 0..<(isArray ? 2 : 1) {
            guard peek(is: "]") else { throw fail("expected \(close), found \(describe(offset))") }
            offset += 1
        }
        let table = isArray ? try builder.openArrayElement(path, headerAt: headerAt)
            : try builder.openTable(path, headerAt: headerAt)
        return (table, path)
    }

    /// `key = value` in a table `depth` levels down, read but not stored yet:
    /// the document's pairs and the entries of inline tables.
    mutating func parseKeyValuePair(depth: Int)
        throws(TOMLSyntaxError) -> ([TOMLTableBuilder.KeyPart], TOMLPosition, TOMLValue) {
        let path = try parseKey()
        guard peek(is: "=") else {
            throw fail("expected '=' after the key \(TOMLTableBuilder.dotted(path)), found \(describe(offset))")
        }
        offset += 1
        skipWhitespace()
        // Taken before the value is read, so positions are asked for in file order.
        let valueAt = position(of: mark)
        let value = try parseValue(depth: depth + path.count)
        return (path, valueAt, value)
    }

    /// A key, dotted or not, and the whitespace after it: `a`, `"a b".c`, `a . 'b'`.
    mutating func parseKey() throws(TOMLSyntaxError) -> [TOMLTableBuilder.KeyPart] {
        var path: [TOMLTableBuilder.KeyPart] = []
        while true {
            let start = mark
            let name = try parseSimpleKey()
            path.append(TOMLTableBuilder.KeyPart(name: name, position: position(of: start)))
            guard path.count <= Self.maxDepth else {
                throw fail("a dotted key of more than \(Self.maxDepth) parts", at: start)
            }
            skipWhitespace()
            guard peek(is: ".") else { return path }
            offset += 1
            skipWhitespace()
        }
    }

    private mutating func parseSimpleKey() throws(TOMLSyntaxError) -> String {
        switch peek() {
        case UInt8(ascii: "\""):
            if peek(is: "\"", 1) && peek(is: "\"", 2) { throw fail("a key cannot be a multi-line string") }
            return try parseBasicString()
        case UInt8(ascii: "'"):
            if peek(is: "'", 1) && peek(is: "'", 2) { throw fail("a key cannot be a multi-line string") }
            return try parseLiteralString()
        case let byte? where Self.isBareKeyByte(byte):
            let start = offset
            while let byte = peek(), Self.isBareKeyByte(byte) { offset += 1 }
            return String(decoding: bytes[start..<offset], as: UTF8.self)
        default:
            throw fail("expected a key (letters, digits, '_' and '-', or a quoted string), found \(describe(offset))")
        }
    }
}
