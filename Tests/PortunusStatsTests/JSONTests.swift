import Foundation
import Testing
@testable import PortunusStats
import TestSupport

/// The stats documents' JSON: what we write parses back the same, and `stats --once`'s
/// pretty form is byte for byte what an independent printer (Python's json, which
/// shares serde_json's pretty layout) makes of the same document with sorted keys.
@Suite struct JSONTests {
    static let sample: JSON = .object([
        ("v", .int(1)),
        ("name", .string("quote \" backslash \\ tab \t newline \n bell \u{07} é 🚀")),
        ("big", .int(UInt64.max)),
        ("empty_array", .array([])),
        ("empty_object", .object([])),
        ("none", .null),
        ("flags", .array([.bool(true), .bool(false)])),
        ("Zeta", .object([("b", .int(2)), ("a", .array([.int(1), .object([("y", .null), ("x", .string(""))])]))])),
    ])

    @Test func compactTextParsesBackToTheSameValue() throws {
        let text = Self.sample.compact
        #expect(!text.contains("\n"), "one line per document on the socket")
        #expect(try JSON.parse(text) == Self.sample)
        #expect(Self.sample["big"]?.uint64Value == UInt64.max, "a u64 stays exact")
    }

    @Test func prettySortedMatchesPythonsJsonDumpsWithSortedKeys() throws {
        #expect(Self.sample.prettySorted == (try pythonPrettySortedJSON(Self.sample.compact)))
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\" 1}", "\"unterminated", "tru", "01x", "[1] 2", "{\"a\":\"\\x\"}", "\"\\ud800\"",
                      String(repeating: "[", count: 100) + String(repeating: "]", count: 100)])
    func malformedTextIsRefusedWithAnOffset(text: String) {
        #expect(throws: JSONParseError.self) { try JSON.parse(text) }
    }
}
