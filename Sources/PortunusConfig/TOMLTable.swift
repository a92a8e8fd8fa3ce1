// A TOML table: keys in file order, each with the position it was written
// at, looked up by exact Unicode scalars.

/// A TOML table: its keys in the order the file defines them, each with its
/// value and the position of the key in the file.
///
/// Keys compare by their Unicode scalars, as TOML and Python's `tomllib` do,
/// not by Swift's canonical equivalence: `"é"` (U+00E9) and `"e\u{301}"` are
/// two keys.
public struct TOMLTable: Sendable, Equatable {
    /// One key of the table.
    public struct Entry: Sendable, Keyed {
        /// The key as written, quotes and escapes resolved; one part of a dotted key.
        public let key: String
        /// Where the key is written; for a table made by a header or a dotted
        /// key, where that key part is written the first time.
        public let position: TOMLPosition
        /// The key's value.
        public let value: TOMLValue
    }

    private var list = KeyedList<Entry>()

    /// An empty table.
    public init() {}

    /// Every key with its value, in file order.
    public var entries: [Entry] { list.elements }

    /// The keys, in file order.
    public var keys: [String] { list.elements.map(\.key) }

    /// Number of keys.
    public var count: Int { list.elements.count }

    /// True when the table has no keys.
    public var isEmpty: Bool { list.elements.isEmpty }

    /// The value at `key` (one key part, not a dotted path), or nil.
    public subscript(key: String) -> TOMLValue? {
        list.index(of: key).map { list.elements[$0].value }
    }

    /// Where `key` is written, or nil when the table has no such key.
    public func position(of key: String) -> TOMLPosition? {
        list.index(of: key).map { list.elements[$0].position }
    }

    /// Adds `key`, which must not be in the table yet (the parser checks first).
    mutating func append(_ key: String, _ value: TOMLValue, at position: TOMLPosition) {
        precondition(list.index(of: key) == nil, "duplicate TOML key \(key)")
        list.append(Entry(key: key, position: position, value: value))
    }

    /// Same keys with equal values; order and positions are not compared.
    public static func == (lhs: TOMLTable, rhs: TOMLTable) -> Bool {
        lhs.count == rhs.count && lhs.list.elements.allSatisfy { entry in
            rhs.list.index(of: entry.key).map { rhs.list.elements[$0].value == entry.value } ?? false
        }
    }
}
