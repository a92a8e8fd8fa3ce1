// Ordered storage with lookup by exact key, shared by the finished tables
// and the tables under construction in TOMLTableBuilder.

/// Something stored under a TOML key.
protocol Keyed {
    var key: String { get }
}

/// Elements in insertion order, found by key. Most tables have a handful of
/// keys, so they are scanned; a hash index is built only past
/// `scanLimit`, which keeps a table with thousands of keys linear to fill.
struct KeyedList<Element: Keyed> {
    private(set) var elements: [Element] = []
    private var index: [ExactKey: Int]?

    static var scanLimit: Int { 8 }

    func index(of key: String) -> Int? {
        if let index { return index[ExactKey(key)] }
        return elements.firstIndex { ExactKey.same($0.key, key) }
    }

    mutating func append(_ element: Element) {
        elements.append(element)
        if index != nil {
            index![ExactKey(element.key)] = elements.count - 1
        } else if elements.count > Self.scanLimit {
            var built: [ExactKey: Int] = [:]
            for (position, element) in elements.enumerated() { built[ExactKey(element.key)] = position }
            index = built
        }
    }

    subscript(position: Int) -> Element {
        get { elements[position] }
        set { elements[position] = newValue }
    }
}

/// A key compared and hashed by its UTF-8 bytes (so by Unicode scalars),
/// where `String`'s own `==` would merge canonically equivalent spellings
/// that TOML keeps apart.
struct ExactKey: Hashable, Sendable {
    let text: String

    init(_ text: String) { self.text = text }

    static func same(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }

    static func == (lhs: ExactKey, rhs: ExactKey) -> Bool { same(lhs.text, rhs.text) }

    func hash(into hasher: inout Hasher) {
        for byte in text.utf8 { hasher.combine(byte) }
        hasher.combine(0xFF as UInt8)  // never a UTF-8 byte: ends the key
    }
}

extension KeyedList: Sendable where Element: Sendable {}
