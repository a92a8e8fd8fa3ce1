// What the TOML parser refuses, where it says the problem is, and what it
// says; plus the limits that keep a hostile file from costing more than
// linear time or the stack.
import Foundation
import PortunusConfig
import Testing

/// A document that is not TOML 1.0, where the error must point, and words
/// its message must contain.
struct MalformedCase: Sendable, CustomTestStringConvertible {
    let toml: String
    let line: Int
    let column: Int
    let fragment: String

    init(_ toml: String, _ line: Int, _ column: Int, _ fragment: String) {
        self.toml = toml
        self.line = line
        self.column = column
        self.fragment = fragment
    }

    var testDescription: String { toml.debugDescription }
}

@Suite("TOML syntax errors")
struct TOMLMalformedTests {
    private func check(_ row: MalformedCase, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            let table = try TOMLParser.parse(row.toml)
            Issue.record("accepted as \(compact(table))", sourceLocation: sourceLocation)
        } catch {
            #expect(error.position == TOMLPosition(line: row.line, column: row.column), "\(error)",
                    sourceLocation: sourceLocation)
            #expect(error.message.contains(row.fragment), "\(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("lines, keys and values", arguments: [
        MalformedCase("x = \n", 1, 5, "expected a value, found end of line"),
        MalformedCase("x =", 1, 4, "expected a value, found end of file"),
        MalformedCase("x = # c", 1, 5, "expected a value, found '#'"),
        MalformedCase("= 1", 1, 1, "expected a key"),
        MalformedCase("a 1", 1, 3, "expected '=' after the key a, found '1'"),
        MalformedCase("a.b", 1, 4, "expected '=' after the key a.b, found end of file"),
        MalformedCase("a\n= 1", 1, 2, "expected '=' after the key a, found end of line"),
        MalformedCase("a. = 1", 1, 4, "expected a key"),
        MalformedCase("a$b = 1", 1, 2, "expected '=' after the key a, found '$'"),
        MalformedCase("é = 1", 1, 1, "found 'é' (U+00E9)"),
        MalformedCase("a = 1 b = 2", 1, 7, "expected the end of the line after the value, found 'b'"),
        MalformedCase("a = \"x\" \"y\"", 1, 9, "after the value, found '\"'"),
        MalformedCase("protocol = tcp", 1, 12, "a string needs quotes: \"tcp\""),
        MalformedCase("a = True", 1, 5, "a string needs quotes"),
        MalformedCase("a = @", 1, 5, "expected a value, found '@'"),
        MalformedCase("\"\"\"a\"\"\" = 1", 1, 1, "a key cannot be a multi-line string"),
        MalformedCase("[[rule]]\nname = \"a\"\nlisten_port = = 80\n", 3, 15, "expected a value, found '='"),
    ])
    func linesKeysValues(row: MalformedCase) { check(row) }

    @Test("control characters and line ends", arguments: [
        MalformedCase("[global]\nlabel = \"a\"\u{0}\n", 2, 12, "found U+0000 (a control character)"),
        MalformedCase("a = \"x\u{7F}\"", 1, 7, "U+007F (a control character) is not allowed in a string"),
        MalformedCase("a = 'x\u{1}'", 1, 7, "U+0001 (a control character) is not allowed in a literal string"),
        MalformedCase("a = \"\"\"\nx\u{1F}\"\"\"", 2, 2, "U+001F"),
        MalformedCase("# é \u{0}", 1, 5, "U+0000 (a control character) is not allowed in a comment"),
        MalformedCase("a = 1\rb = 2", 1, 6, "a carriage return (U+000D) must be followed by a line feed"),
        MalformedCase("# c\r", 1, 4, "carriage return"),
        MalformedCase("a = \"\"\"x\ry\"\"\"", 1, 9, "carriage return"),
    ])
    func controlCharacters(row: MalformedCase) { check(row) }

    @Test("strings", arguments: [
        MalformedCase("[[rule]]\nname = \"a\nlisten_port = 1\n", 2, 10, "unterminated string"),
        MalformedCase("a = \"abc", 1, 9, "unterminated string: the file ends"),
        MalformedCase("a = 'abc\n", 1, 9, "unterminated string: a '...' string must close on the line"),
        MalformedCase("a = \"\"\"abc\n\n", 3, 1, "unterminated multi-line string: the file ends before the '\"\"\"' closing the one opened at 1:5"),
        MalformedCase("a = '''abc", 1, 11, "opened at 1:5"),
        MalformedCase("a = \"\\x41\"", 1, 6, "invalid escape: \\x"),
        MalformedCase("a = \"\\e\"", 1, 6, "invalid escape: \\e"),
        MalformedCase("a = \"a\\ b\"", 1, 7, "a backslash followed by whitespace"),
        MalformedCase("a = \"\"\"a \\ b\"\"\"", 1, 10, "a backslash followed by whitespace"),
        MalformedCase("a = \"\\u00E\"", 1, 11, "expected 4 hex digits after \\u, found '\"'"),
        MalformedCase("a = \"\\U0001F60\"", 1, 15, "expected 8 hex digits after \\U"),
        MalformedCase("a = \"\\uD800\"", 1, 6, "\\uD800 is not a Unicode scalar value"),
        MalformedCase("a = \"\\U00110000\"", 1, 6, "\\U00110000 is not a Unicode scalar value"),
        MalformedCase("a = \"\"\"x\"\"\"\"\"\"", 1, 14, "after the value, found '\"'"),
        MalformedCase("a = 'it's'", 1, 9, "after the value, found 's'"),
    ])
    func strings(row: MalformedCase) { check(row) }

    @Test("numbers", arguments: [
        MalformedCase("[[rule]]\nlisten_port = 99999999999999999999\n", 2, 35, "does not fit in a 64-bit integer"),
        MalformedCase("a = 9223372036854775808", 1, 24, "does not fit"),
        MalformedCase("a = -9223372036854775809", 1, 25, "does not fit"),
        MalformedCase("a = 0x8000000000000000", 1, 23, "0x8000000000000000 does not fit"),
        MalformedCase("a = 0b1_0000000000000000000000000000000000000000000000000000000000000000", 1, 73, "does not fit"),
        MalformedCase("a = 01", 1, 5, "leading zeros are not allowed"),
        MalformedCase("a = -0_1", 1, 6, "leading zeros"),
        MalformedCase("a = 00.5", 1, 5, "leading zeros"),
        MalformedCase("a = 1_", 1, 6, "an underscore in a number must stand between two digits"),
        MalformedCase("a = 1__2", 1, 6, "underscore"),
        MalformedCase("a = 1_.5", 1, 6, "underscore"),
        MalformedCase("a = 0x_1", 1, 7, "expected a hexadecimal digit, found '_'"),
        MalformedCase("a = 0x", 1, 7, "expected a hexadecimal digit, found end of file"),
        MalformedCase("a = 0o8", 1, 7, "expected a octal digit"),
        MalformedCase("a = -0x1", 1, 5, "cannot have a sign"),
        MalformedCase("a = 0X1", 1, 6, "invalid number: 'X' cannot follow 0"),
        MalformedCase("a = 0b102", 1, 9, "invalid binary integer: '2' cannot follow 0b10"),
        MalformedCase("a = 1.", 1, 7, "expected a digit after '.', found end of file"),
        MalformedCase("a = 1.e5", 1, 7, "expected a digit after '.', found 'e'"),
        MalformedCase("a = .5", 1, 5, "expected a value, found '.'"),
        MalformedCase("a = 1e", 1, 7, "expected a digit in the exponent"),
        MalformedCase("a = 1e+", 1, 8, "expected a digit in the exponent"),
        MalformedCase("a = +", 1, 6, "expected a digit after the sign"),
        MalformedCase("a = 1.2.3", 1, 8, "invalid number: '.' cannot follow 1.2"),
        MalformedCase("a = 1x", 1, 6, "invalid number: 'x' cannot follow 1"),
        MalformedCase("a = +infinity", 1, 5, "expected a number after the sign, found infinity"),
        MalformedCase("a = -NaN", 1, 5, "expected a number after the sign, found NaN"),
    ])
    func numbers(row: MalformedCase) { check(row) }

    @Test("dates and times", arguments: [
        MalformedCase("a = 1979-13-01", 1, 5, "month 13 is not 01 to 12"),
        MalformedCase("a = 1979-00-01", 1, 5, "month 00"),
        MalformedCase("a = 2023-02-29", 1, 5, "2023-02-29 is not a date: that month has 28 days"),
        MalformedCase("a = 2024-04-31", 1, 5, "that month has 30 days"),
        MalformedCase("a = 0000-01-01", 1, 5, "year 0000"),
        MalformedCase("a = 1979-5-27", 1, 11, "expected 2 digits for the month, found '-'"),
        MalformedCase("a = 1979-05-27T", 1, 16, "expected 2 digits for the hour, found end of file"),
        MalformedCase("a = 1979-05-27x", 1, 15, "invalid date: 'x' cannot follow 1979-05-27"),
        MalformedCase("a = 1979-05-27T24:00:00", 1, 16, "hour 24 is not 00 to 23"),
        MalformedCase("a = 1979-05-27T07:60:00", 1, 16, "minute 60"),
        MalformedCase("a = 1979-05-27T07:32:60Z", 1, 16, "second 60"),
        MalformedCase("a = 1979-05-27T07:32", 1, 21, "expected ':' in the time (seconds are required)"),
        MalformedCase("a = 1979-05-27 07:32\n", 1, 21, "seconds are required"),
        MalformedCase("a = 1979-05-27T07:32:00+24:00", 1, 24, "offset 24:00 is not within 00:00 to 23:59"),
        MalformedCase("a = 1979-05-27T07:32:00+07", 1, 27, "expected ':' in the offset"),
        MalformedCase("a = 1979-05-27T07:32:00.Z", 1, 25, "expected a digit after '.' in the time"),
        MalformedCase("a = 1979-05-27T07:32:00Zx", 1, 25, "invalid date-time: 'x' cannot follow"),
        MalformedCase("a = 07:32", 1, 10, "seconds are required"),
        MalformedCase("a = 07:32:00Z", 1, 13, "invalid time: 'Z' cannot follow 07:32:00"),
    ])
    func dates(row: MalformedCase) { check(row) }

    @Test("arrays and inline tables", arguments: [
        MalformedCase("a = [1, 2", 1, 10, "unterminated array: the file ends before the ']' closing the one opened at 1:5"),
        MalformedCase("a = [1 2]", 1, 8, "expected ',' or ']' after an array element, found '2'"),
        MalformedCase("a = [1,,2]", 1, 8, "expected a value, found ','"),
        MalformedCase("a = [,]", 1, 6, "expected a value, found ','"),
        MalformedCase("a = [1}", 1, 7, "expected ',' or ']'"),
        MalformedCase("a = { b = 1,\n c = 2 }", 1, 13, "an inline table must close on the line it opens on"),
        MalformedCase("a = {\n}", 1, 6, "the '{' at 1:5 has no '}' before the end of the line"),
        MalformedCase("a = { b = 1, }", 1, 14, "an inline table cannot end with a comma"),
        MalformedCase("a = { b = 1", 1, 12, "unterminated inline table"),
        MalformedCase("a = { b = 1 c = 2 }", 1, 13, "expected ',' or '}' in the inline table, found 'c'"),
        MalformedCase("a = { , }", 1, 7, "expected a key"),
        MalformedCase("a = { b = }", 1, 11, "expected a value, found '}'"),
        MalformedCase("a = { b = 1 # c\n}", 1, 13, "expected ',' or '}' in the inline table, found '#'"),
    ])
    func containers(row: MalformedCase) { check(row) }

    @Test("headers", arguments: [
        MalformedCase("[]", 1, 2, "expected a key"),
        MalformedCase("[[]]", 1, 3, "expected a key"),
        MalformedCase("[a\n", 1, 3, "expected ']' to close the table header [a], found end of line"),
        MalformedCase("[a]]", 1, 4, "expected the end of the line after the table header, found ']'"),
        MalformedCase("[[a]\n", 1, 5, "expected ']]' to close the array-of-tables header [[a]], found end of line"),
        MalformedCase("[[a] ]", 1, 5, "found a space"),
        MalformedCase("[ [a]]", 1, 3, "expected a key"),
        MalformedCase("[a] b = 1", 1, 5, "after the table header, found 'b'"),
        MalformedCase("a = 1 [b]", 1, 7, "after the value, found '['"),
        MalformedCase("[a\n.b]", 1, 3, "found end of line"),
    ])
    func headers(row: MalformedCase) { check(row) }

    /// A redefined key is reported where its new value starts, a redefined
    /// table at its header's '[' (both where toml++ reported them).
    @Test("redefinitions", arguments: [
        MalformedCase("[[rule]]\nname = \"a\"\nname = \"b\"\n", 3, 8, "key rule.name is already defined at 2:1"),
        MalformedCase("a = 1\n\"a\" = 2", 2, 7, "key a is already defined at 1:1"),
        MalformedCase("\"\\u0061\" = 1\na = 2", 2, 5, "key a is already defined at 1:1"),
        MalformedCase("a = 1\na.b = 2", 2, 7, "cannot define a.b: a is already an integer (at 1:1)"),
        MalformedCase("a.b = 1\na = 2", 2, 5, "key a is already defined at 1:1"),
        MalformedCase("a = 1\n[a]", 2, 1, "cannot define table [a]: a is already an integer (at 1:1)"),
        MalformedCase("[a]\n[a]", 2, 1, "table [a] is already defined at 1:1"),
        MalformedCase("[a.b]\n[a]\n[a.b]", 3, 1, "table [a.b] is already defined at 1:1"),
        MalformedCase("[a]\n[[a]]", 2, 1, "cannot define [[a]]: a is already a table (at 1:1)"),
        MalformedCase("[[a]]\n[a]", 2, 1, "a is an array of tables (at 1:1); write [[a]] to add an element to it"),
        MalformedCase("[fruit]\napple.color = 1\n[fruit.apple]", 3, 1,
                      "table [fruit.apple] is already defined by dotted keys at 2:1"),
        MalformedCase("a.b = 1\n[a]", 2, 1, "table [a] is already defined by dotted keys at 1:1"),
        MalformedCase("[a.b]\nx = 1\n[a]\nb.y = 2", 4, 7,
                      "dotted keys cannot add to table [a.b], which its header defines (at 1:1)"),
        MalformedCase("[[x.arr]]\n[x]\narr.y = 1", 3, 9, "dotted keys cannot add to x.arr, an array of tables (at 1:1)"),
        MalformedCase("a = { b = 1 }\n[a]", 2, 1, "cannot define table [a]: a is already an inline table (at 1:1)"),
        MalformedCase("a = { b = 1 }\n[a.c]", 2, 1, "a is already an inline table (at 1:1), which cannot be extended"),
        MalformedCase("a = { b = 1 }\na.c = 2", 2, 7, "cannot define a.c: a is already an inline table (at 1:1)"),
        MalformedCase("a = []\n[[a]]", 2, 1, "it is an array written as a value (at 1:1), which cannot be extended"),
        MalformedCase("a = [{ b = 1 }]\n[a.c]", 2, 1, "a is already an array (at 1:1), which cannot be extended"),
        MalformedCase("a = 1\n[[a]]", 2, 1, "cannot define [[a]]: a is already an integer"),
        MalformedCase("a = { b = 1, b = 2 }", 1, 18, "key b is already defined at 1:7"),
        MalformedCase("a = { b.c = 1, b = 2 }", 1, 20, "key b is already defined at 1:7"),
        MalformedCase("[t]\na.b = 1\n[t.a]", 3, 1, "table [t.a] is already defined by dotted keys at 2:1"),
    ])
    func redefinitions(row: MalformedCase) { check(row) }

    /// TOML's limit is ours too: an integer must fit in 64 bits, which Python's
    /// `tomllib` does not check, so these stay out of the corpus it judges.
    @Test func integersBeyond64BitsWherePythonAcceptsThem() {
        for text in ["a = 18446744073709551616", "a = 0xFFFFFFFFFFFFFFFF", "a = 0o1777777777777777777777",
                     "a = -9223372036854775809"] {
            #expect(throws: TOMLSyntaxError.self, "\(text)") { try TOMLParser.parse(text) }
        }
    }

    // MARK: Limits

    /// 100 levels below the document are read (`a = [[...]]` with 100 arrays);
    /// one more is an error, not a stack overflow, and so is a file of a
    /// hundred thousand '['.
    @Test func nestingIsCapped() throws {
        let depth = TOMLParser.maxDepth
        _ = try TOMLParser.parse("a = " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth))
        _ = try TOMLParser.parse(String(repeating: "a.", count: depth - 1) + "a = 1")
        _ = try TOMLParser.parse("[" + Array(repeating: "t", count: depth).joined(separator: ".") + "]")
        let tooDeep = [
            "a = " + String(repeating: "[", count: depth + 1) + String(repeating: "]", count: depth + 1),
            "a = " + String(repeating: "{b = ", count: depth) + "1" + String(repeating: "}", count: depth),
            String(repeating: "a.", count: depth) + "a = 1",
            "[" + Array(repeating: "t", count: depth + 1).joined(separator: ".") + "]",
            "[" + Array(repeating: "t", count: 60).joined(separator: ".") + "]\n"
                + Array(repeating: "u", count: 40).joined(separator: ".") + " = [1]",
            "a = " + String(repeating: "[", count: 100_000),
            "a = " + String(repeating: "{b=", count: 100_000),
            "[" + String(repeating: "a.", count: 100_000) + "a]",
        ]
        for text in tooDeep {
            #expect(throws: TOMLSyntaxError.self, "\(text.prefix(40))...") { try TOMLParser.parse(text) }
        }
    }

    /// Big documents of each shape parse in time linear in their size: a
    /// quadratic step anywhere (key lookup, column counting, appending to an
    /// array of tables) would take minutes at this size, not seconds.
    @Test func largeDocumentsStayLinear() throws {
        let count = 50_000
        let shapes = [
            "t = {" + (0..<count).map { "k\($0) = \($0)" }.joined(separator: ", ") + "}",
            "a = [" + (0..<count).map { "{x = \($0)}" }.joined(separator: ",") + "]",
            (0..<count).map { "[[rule]]\nname = \"r\($0)\"\n[rule.sub]\nv = \($0)" }.joined(separator: "\n"),
            (0..<count).map { "[t.k\($0)]\nv = 1" }.joined(separator: "\n"),
            (0..<count).map { "k\($0).x = 1" }.joined(separator: "\n"),
            "s = \"" + String(repeating: "é\\u00E9", count: count) + "\"",
        ]
        let clock = ContinuousClock()
        for text in shapes {
            let elapsed = try clock.measure { _ = try TOMLParser.parse(text) }
            #expect(elapsed < .seconds(20), "\(text.prefix(30))... took \(elapsed)")
        }
    }

    /// Every prefix of every invalid document: each an error or a value, never a trap.
    @Test func prefixesOfMalformedInputNeverTrap() throws {
        var parsed = 0
        for path in try TOMLCorpus.paths("invalid") {
            guard let data = FileManager.default.contents(atPath: path),
                  let text = String(validating: Array(data), as: UTF8.self) else { continue }
            for end in text.unicodeScalars.indices + [text.unicodeScalars.endIndex] {
                _ = try? TOMLParser.parse(String(text.unicodeScalars[..<end]))
                parsed += 1
            }
        }
        #expect(parsed > 2_000)
    }

    /// The error's text, as `parse.syntax` prints it.
    @Test func errorDescription() {
        let error = TOMLSyntaxError(position: TOMLPosition(line: 3, column: 9), message: "m")
        #expect(error.description == "3:9: m")
    }
}
