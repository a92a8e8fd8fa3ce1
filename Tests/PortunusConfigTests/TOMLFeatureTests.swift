// The TOML 1.0 parser, feature by feature: each row a document and the
// table it must give, in `compact` form (keys in file order).
import PortunusConfig
import Testing

/// One document and the table it must parse to.
struct TOMLCase: Sendable, CustomTestStringConvertible {
    let toml: String
    let expected: String

    init(_ toml: String, _ expected: String) {
        self.toml = toml
        self.expected = expected
    }

    var testDescription: String { toml.debugDescription }
}

private func check(_ row: TOMLCase, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        let table = try TOMLParser.parse(row.toml)
        #expect(compact(table) == row.expected, sourceLocation: sourceLocation)
    } catch {
        Issue.record("\(row.toml.debugDescription) failed: \(error)", sourceLocation: sourceLocation)
    }
}

@Suite("TOML features")
struct TOMLFeatureTests {
    @Test("strings", arguments: [
        TOMLCase(#"a = "I'm a string.""#, #"{a = "I'm a string."}"#),
        TOMLCase(#"a = "\b\t\n\f\r\"\\""#, #"{a = "\u0008\t\n\u000C\r\"\\"}"#),
        TOMLCase(#"a = "\u00E9\u00e9""#, #"{a = "éé"}"#),
        TOMLCase(#"a = "\U0001F600\U0010FFFF""#, "{a = \"😀\u{10FFFF}\"}"),
        TOMLCase(#"a = "\u0000\u007F""#, #"{a = "\u0000\u007F"}"#),
        TOMLCase("a = \"tab\there\"", #"{a = "tab\there"}"#),
        TOMLCase(#"a = "Grüße 😀""#, #"{a = "Grüße 😀"}"#),
        TOMLCase(#"a = """#, #"{a = ""}"#),
        TOMLCase(##"a = "# not a comment" # a comment"##, ##"{a = "# not a comment"}"##),
        TOMLCase(#"a = 'C:\Users\x'"#, #"{a = "C:\\Users\\x"}"#),
        TOMLCase(#"a = 'say "hi"'"#, #"{a = "say \"hi\""}"#),
        TOMLCase("a = ''", #"{a = ""}"#),
        TOMLCase("a = \"\"\"\nfirst newline dropped\"\"\"", #"{a = "first newline dropped"}"#),
        TOMLCase("a = \"\"\"\r\nCR LF dropped too\"\"\"", #"{a = "CR LF dropped too"}"#),
        TOMLCase("a = \"\"\"\n\nonly the first\"\"\"", #"{a = "\nonly the first"}"#),
        TOMLCase("a = \"\"\"one\r\ntwo\"\"\"", #"{a = "one\ntwo"}"#),
        TOMLCase("a = \"\"\"The quick \\\n    brown \\\n\n\n   fox\"\"\"", #"{a = "The quick brown fox"}"#),
        TOMLCase("a = \"\"\"trailing \\   \t\n  spaces\"\"\"", #"{a = "trailing spaces"}"#),
        TOMLCase("a = \"\"\"ends \\\n\"\"\"", #"{a = "ends "}"#),
        TOMLCase(#"a = """one " two "" three""""#, #"{a = "one \" two \"\" three"}"#),
        TOMLCase(#"a = """quote at the end"""""#, #"{a = "quote at the end\""}"#),
        TOMLCase(#"a = """two at the end""""""#, #"{a = "two at the end\"\""}"#),
        TOMLCase(#"a = """\t\u00E9\\""""#, #"{a = "\té\\"}"#),
        TOMLCase(#"a = """""""#, #"{a = ""}"#),
        TOMLCase("a = '''\nraw \\n text\n'''", #"{a = "raw \\n text\n"}"#),
        TOMLCase("a = '''it's'''''", #"{a = "it's''"}"#),
        TOMLCase("a = '''a\\\nb'''", #"{a = "a\\\nb"}"#),
        TOMLCase("a = ''''''", #"{a = ""}"#),
    ])
    func strings(row: TOMLCase) { check(row) }

    @Test("integers", arguments: [
        TOMLCase("a = 0\nb = +0\nc = -0", "{a = 0, b = 0, c = 0}"),
        TOMLCase("a = +99\nb = 42\nc = -17", "{a = 99, b = 42, c = -17}"),
        TOMLCase("a = 1_000\nb = 5_349_221\nc = 1_2_3", "{a = 1000, b = 5349221, c = 123}"),
        TOMLCase("a = 9223372036854775807\nb = -9223372036854775808",
                 "{a = 9223372036854775807, b = -9223372036854775808}"),
        TOMLCase("a = 0xDEADBEEF\nb = 0xdead_beef\nc = 0x00FF", "{a = 3735928559, b = 3735928559, c = 255}"),
        TOMLCase("a = 0x7FFFFFFFFFFFFFFF", "{a = 9223372036854775807}"),
        TOMLCase("a = 0o01234567\nb = 0o755", "{a = 342391, b = 493}"),
        TOMLCase("a = 0b11010110\nb = 0b1_0", "{a = 214, b = 2}"),
    ])
    func integers(row: TOMLCase) { check(row) }

    @Test("floats", arguments: [
        TOMLCase("a = +1.0\nb = 3.1415\nc = -0.01", "{a = 1.0, b = 3.1415, c = -0.01}"),
        TOMLCase("a = 5e+22\nb = 1e06\nc = -2E-2", "{a = 5e+22, b = 1000000.0, c = -0.02}"),
        TOMLCase("a = 6.626e-34", "{a = 6.626e-34}"),
        TOMLCase("a = 224_617.445_991_228", "{a = 224617.445991228}"),
        TOMLCase("a = 0.0\nb = -0.0\nc = 0e0", "{a = 0.0, b = -0.0, c = 0.0}"),
        TOMLCase("a = 1e1_0", "{a = 10000000000.0}"),
        TOMLCase("a = inf\nb = +inf\nc = -inf", "{a = inf, b = inf, c = -inf}"),
        TOMLCase("a = nan\nb = +nan\nc = -nan", "{a = nan, b = nan, c = -nan}"),
        TOMLCase("a = 1e400\nb = 1e-400", "{a = inf, b = 0.0}"),
        TOMLCase("a = 0.1\nb = 9007199254740993.0", "{a = 0.1, b = 9007199254740992.0}"),
    ])
    func floats(row: TOMLCase) { check(row) }

    @Test func nanKeepsItsSign() throws {
        let table = try TOMLParser.parse("a = -nan\nb = nan")
        #expect(table["a"]?.float?.isNaN == true && table["a"]?.float?.sign == .minus)
        #expect(table["b"]?.float?.isNaN == true && table["b"]?.float?.sign == .plus)
    }

    @Test("booleans and words", arguments: [
        TOMLCase("a = true\nb = false", "{a = true, b = false}"),
        TOMLCase("true = false", "{true = false}"),
        TOMLCase("inf = nan", "{inf = nan}"),
    ])
    func booleans(row: TOMLCase) { check(row) }

    @Test("dates and times", arguments: [
        TOMLCase("a = 1979-05-27T07:32:00Z", "{a = 1979-05-27T07:32:00Z}"),
        TOMLCase("a = 1979-05-27t07:32:00z", "{a = 1979-05-27T07:32:00Z}"),
        TOMLCase("a = 1979-05-27 07:32:00Z", "{a = 1979-05-27T07:32:00Z}"),
        TOMLCase("a = 1979-05-27T00:32:00-07:00", "{a = 1979-05-27T00:32:00-07:00}"),
        TOMLCase("a = 1979-05-27T00:32:00.999999+05:30", "{a = 1979-05-27T00:32:00.999999+05:30}"),
        TOMLCase("a = 1979-05-27T00:32:00-00:00", "{a = 1979-05-27T00:32:00Z}"),
        TOMLCase("a = 1979-05-27T07:32:00.123456789999Z", "{a = 1979-05-27T07:32:00.123456789Z}"),
        TOMLCase("a = 1979-05-27T07:32:00", "{a = 1979-05-27T07:32:00}"),
        TOMLCase("a = 1979-05-27 07:32:00.5", "{a = 1979-05-27T07:32:00.5}"),
        TOMLCase("a = 1979-05-27", "{a = 1979-05-27}"),
        TOMLCase("a = 1979-05-27 # a date, a space, a comment", "{a = 1979-05-27}"),
        TOMLCase("a = 2000-02-29\nb = 2024-02-29\nc = 0001-01-01", "{a = 2000-02-29, b = 2024-02-29, c = 0001-01-01}"),
        TOMLCase("a = 07:32:00\nb = 00:32:00.999999\nc = 23:59:59.1",
                 "{a = 07:32:00, b = 00:32:00.999999, c = 23:59:59.1}"),
        TOMLCase("a = 9999-12-31T23:59:59.999999999+23:59", "{a = 9999-12-31T23:59:59.999999999+23:59}"),
    ])
    func dates(row: TOMLCase) { check(row) }

    @Test func dateTimeFields() throws {
        let value = try #require(try TOMLParser.parse("a = 1979-05-27T00:32:00.25-07:30")["a"])
        guard case .offsetDateTime(let date, let time, let minutes) = value else {
            Issue.record("not an offset date-time: \(value)")
            return
        }
        #expect((date.year, date.month, date.day) == (1979, 5, 27))
        #expect((time.hour, time.minute, time.second, time.nanosecond) == (0, 32, 0, 250_000_000))
        #expect(minutes == -450)
    }

    @Test("arrays", arguments: [
        TOMLCase("a = [ 1, 2, 3 ]", "{a = [1, 2, 3]}"),
        TOMLCase("a = []\nb = [ ]", "{a = [], b = []}"),
        TOMLCase("a = [ [ 1, 2 ], [\"a\", 'b'] ]", #"{a = [[1, 2], ["a", "b"]]}"#),
        TOMLCase("a = [ 1, 1.5, \"s\", true, 1979-05-27, [2], {b = 3} ]",
                 #"{a = [1, 1.5, "s", true, 1979-05-27, [2], {b = 3}]}"#),
        TOMLCase("a = [1, 2, ]", "{a = [1, 2]}"),
        TOMLCase("a = [\n  1, # one\n  # nothing\n  2\n  , 3,\n]", "{a = [1, 2, 3]}"),
        TOMLCase("a = [\r\n1,\r\n2\r\n]", "{a = [1, 2]}"),
        TOMLCase("a = [[[[[]]]]]", "{a = [[[[[]]]]]}"),
        TOMLCase("a = [ \"\"\"\nx\"\"\", '''\ny''' ]", #"{a = ["x", "y"]}"#),
    ])
    func arrays(row: TOMLCase) { check(row) }

    @Test("inline tables", arguments: [
        TOMLCase(#"name = { first = "Tom", last = "Preston-Werner" }"#, #"{name = {first = "Tom", last = "Preston-Werner"}}"#),
        TOMLCase("a = {}\nb = {   }", "{a = {}, b = {}}"),
        TOMLCase("a = {x=1,y=2}", "{a = {x = 1, y = 2}}"),
        TOMLCase(#"animal = { type.name = "pug" }"#, #"{animal = {type = {name = "pug"}}}"#),
        TOMLCase("a = { b.c = 1, b.d = 2, e = 3 }", "{a = {b = {c = 1, d = 2}, e = 3}}"),
        TOMLCase("a = { b = { c = { d = 1 } } }", "{a = {b = {c = {d = 1}}}}"),
        TOMLCase("a = { list = [\n1,\n2,\n], after = true }", "{a = {list = [1, 2], after = true}}"),
        TOMLCase("a = { s = \"\"\"\nline\"\"\" }", #"{a = {s = "line"}}"#),
        TOMLCase("a = [ {}, { b = 1 } ]", "{a = [{}, {b = 1}]}"),
    ])
    func inlineTables(row: TOMLCase) { check(row) }

    @Test("keys", arguments: [
        TOMLCase("bare_key-1 = 1\n1234 = 2\n-_- = 3", "{bare_key-1 = 1, 1234 = 2, -_- = 3}"),
        TOMLCase(#""quoted key" = 1"#, #"{"quoted key" = 1}"#),
        TOMLCase(#""" = 1"#, #"{"" = 1}"#),
        TOMLCase("'' = 1", #"{"" = 1}"#),
        TOMLCase(#""\u0041\t" = 1"#, #"{"A\t" = 1}"#),
        TOMLCase(#"'a\b' = 1"#, #"{"a\\b" = 1}"#),
        TOMLCase(#""a.b" = 1"#, #"{"a.b" = 1}"#),
        TOMLCase(#"site."google.com" = true"#, #"{site = {"google.com" = true}}"#),
        TOMLCase("a . b\t.  c = 1", "{a = {b = {c = 1}}}"),
        TOMLCase("3.14159 = 1", "{3 = {14159 = 1}}"),
        TOMLCase("a.b = 1\na.c = 2\nd = 3", "{a = {b = 1, c = 2}, d = 3}"),
        TOMLCase("\"é\" = 1\n\"e\\u0301\" = 2", "{\"é\" = 1, \"e\u{301}\" = 2}"),
        TOMLCase("\"😀\" = 1", "{\"😀\" = 1}"),
    ])
    func keys(row: TOMLCase) { check(row) }

    @Test("tables", arguments: [
        TOMLCase("[a]\nx = 1\n[b]\ny = 2", "{a = {x = 1}, b = {y = 2}}"),
        TOMLCase("[a.b.c]\nx = 1", "{a = {b = {c = {x = 1}}}}"),
        TOMLCase("[ a . \"b c\" . 'd' ]", #"{a = {"b c" = {d = {}}}}"#),
        TOMLCase("[x.y.z]\n[x]\nv = 1", "{x = {y = {z = {}}, v = 1}}"),
        TOMLCase("[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n[fruit.apple.texture]\nsmooth = true",
                 #"{fruit = {apple = {color = "red", taste = {sweet = true}, texture = {smooth = true}}}}"#),
        TOMLCase("[a.b.c]\n[a]\nb.d = 1", "{a = {b = {c = {}, d = 1}}}"),
        TOMLCase("top = 1\n[a]\n[b]", "{top = 1, a = {}, b = {}}"),
        TOMLCase("[a]\n  [a.b]  # indented\n  x = 1", "{a = {b = {x = 1}}}"),
    ])
    func tables(row: TOMLCase) { check(row) }

    @Test("arrays of tables", arguments: [
        TOMLCase("[[p]]\nname = \"Hammer\"\n[[p]]\n[[p]]\nname = \"Nail\"", #"{p = [{name = "Hammer"}, {}, {name = "Nail"}]}"#),
        TOMLCase("[[f]]\nn = 1\n[f.phys]\nc = 2\n[[f.v]]\nn = 3\n[[f.v]]\nn = 4\n[[f]]\nn = 5\n[[f.v]]\nn = 6",
                 "{f = [{n = 1, phys = {c = 2}, v = [{n = 3}, {n = 4}]}, {n = 5, v = [{n = 6}]}]}"),
        TOMLCase("[[a]]\nb.c = 1\n[[a]]\nb.c = 2", "{a = [{b = {c = 1}}, {b = {c = 2}}]}"),
        TOMLCase("[[ a . \"b\" ]]\nx = 1", "{a = {b = [{x = 1}]}}"),
        TOMLCase("[t]\n[[t.list]]\n[[t.list]]\nv = 1", "{t = {list = [{}, {v = 1}]}}"),
    ])
    func arraysOfTables(row: TOMLCase) { check(row) }

    @Test("document shape", arguments: [
        TOMLCase("", "{}"),
        TOMLCase("\n\n  \t\n", "{}"),
        TOMLCase("# only a comment", "{}"),
        TOMLCase("a = 1", "{a = 1}"),
        TOMLCase("a = 1 # no newline at the end", "{a = 1}"),
        TOMLCase("a = 1\r\nb = 2\r\n", "{a = 1, b = 2}"),
        TOMLCase("\u{FEFF}a = 1", "{a = 1}"),
        TOMLCase("# tab\tand é 😀 in a comment\na = 1", "{a = 1}"),
    ])
    func documents(row: TOMLCase) { check(row) }

    /// Keys keep their positions: 1-based, columns in Unicode scalars.
    @Test func keyPositions() throws {
        let table = try TOMLParser.parse("""
            a = 1
            \t"é😀" = 2 # tab first
            [t.u]
              x.y = { z = 3, "w" = 4 }
            [[arr]]\r
            k = 5
            """)
        #expect(table.position(of: "a") == TOMLPosition(line: 1, column: 1))
        #expect(table.position(of: "é😀") == TOMLPosition(line: 2, column: 2))
        #expect(table.position(of: "t") == TOMLPosition(line: 3, column: 2))
        let u = try #require(table["t"]?.table?["u"]?.table)
        #expect(table["t"]?.table?.position(of: "u") == TOMLPosition(line: 3, column: 4))
        #expect(u.position(of: "x") == TOMLPosition(line: 4, column: 3))
        let y = try #require(u["x"]?.table?["y"]?.table)
        #expect(u["x"]?.table?.position(of: "y") == TOMLPosition(line: 4, column: 5))
        #expect(y.position(of: "z") == TOMLPosition(line: 4, column: 11))
        #expect(y.position(of: "w") == TOMLPosition(line: 4, column: 18))
        #expect(table.position(of: "arr") == TOMLPosition(line: 5, column: 3))
        #expect(table["arr"]?.array?.first?.table?.position(of: "k") == TOMLPosition(line: 6, column: 1))
        #expect(table.position(of: "missing") == nil)
    }

    @Test func keysKeepFileOrder() throws {
        let table = try TOMLParser.parse("z = 1\na = 2\nm.x = 3\nb = 4\n[c]\n[0]")
        #expect(table.keys == ["z", "a", "m", "b", "c", "0"])
    }

    /// Tables compare by keys and values, not by order or position.
    @Test func tableEquality() throws {
        #expect(try TOMLParser.parse("a = 1\nb = [2]") == TOMLParser.parse("\n\nb = [ 2 ]\na = 1"))
        #expect(try TOMLParser.parse("a = 1") != TOMLParser.parse("a = 1.0"))
        #expect(try TOMLParser.parse("a = 1") != TOMLParser.parse("a = 1\nb = 1"))
    }

    /// Lookups by exact scalars past the size where the table builds a hash index.
    @Test func largeTablesFindEveryKey() throws {
        let keys = (0..<100).map { "k\($0)" } + ["é", "e\u{301}"]
        let text = keys.enumerated().map { "\(quotedForTest($1)) = \($0)" }.joined(separator: "\n")
        let table = try TOMLParser.parse(text)
        for (index, key) in keys.enumerated() { #expect(table[key] == .integer(Int64(index)), "\(key)") }
        #expect(table["k100"] == nil)
        #expect(throws: TOMLSyntaxError.self) { try TOMLParser.parse(text + "\nk57 = 1") }
    }

    @Test func accessors() throws {
        let table = try TOMLParser.parse("s = \"x\"\ni = 1\nf = 1.5\nb = true\na = [1]\nt = {}")
        #expect(table["s"]?.string == "x" && table["s"]?.integer == nil)
        #expect(table["i"]?.integer == 1 && table["i"]?.float == nil)
        #expect(table["f"]?.float == 1.5 && table["f"]?.integer == nil)
        #expect(table["b"]?.bool == true && table["b"]?.string == nil)
        #expect(table["a"]?.array == [.integer(1)] && table["a"]?.table == nil)
        #expect(table["t"]?.table == TOMLTable() && table["t"]?.array == nil)
        #expect(table.count == 6 && !table.isEmpty && TOMLTable().isEmpty)
    }
}
