// The document's tables while it is being read, and TOML 1.0's rules on who
// may define or extend which table. Tables live in an arena and refer to
// their children by index, so a header that reopens a deep table is a walk
// down indices, not a copy of the values above it.

/// Builds the table tree of one document (or of one inline table) and
/// refuses every redefinition TOML 1.0 forbids.
///
/// How each table came to exist decides what may still add to it:
/// - made on the way to a header (`a` for `[a.b]`): `[a]` may still define
///   it once, and dotted keys may still add to it;
/// - defined by a header or as an element of `[[array]]`: never defined again,
///   and dotted keys written outside it cannot add to it;
/// - made by dotted keys (`a.b = 1` makes `a`): more dotted keys may add to
///   it, a header may open tables below it, but `[a]` may not define it.
/// Inline tables and arrays are finished values: nothing adds to them.
/// These are the rules Python's `tomllib` applies too.
struct TOMLTableBuilder {
    /// One part of a dotted key, with where it is written.
    struct KeyPart {
        let name: String
        let position: TOMLPosition
    }

    /// Index of a table in `tables`.
    typealias TableID = Int

    /// The whole document (or the inline table) being built.
    static let root: TableID = 0

    private enum Origin { case implicit, header, dotted }

    private enum Slot {
        case value(TOMLValue)
        case table(TableID)
        /// `[[name]]`; the last element is the one headers below it reach.
        case tables([TableID])
    }

    private struct Entry: Keyed {
        let key: String
        let position: TOMLPosition
        var slot: Slot
    }

    private struct Table {
        var origin: Origin
        var entries = KeyedList<Entry>()
    }

    private var tables = [Table(origin: .header)]

    /// `[a.b.c]`: the table the header opens, defining it.
    mutating func openTable(_ path: [KeyPart]) throws(TOMLSyntaxError) -> TableID {
        let parent = try walkToParent(of: path)
        let last = path[path.count - 1]
        guard let at = tables[parent].entries.index(of: last.name) else {
            return add(last, origin: .header, to: parent)
        }
        let entry = tables[parent].entries[at]
        let name = Self.dotted(path)
        switch entry.slot {
        case .table(let id):
            switch tables[id].origin {
            case .implicit:
                tables[id].origin = .header
                return id
            case .header:
                throw TOMLSyntaxError(position: last.position,
                                      message: "table [\(name)] is already defined at \(entry.position)")
            case .dotted:
                throw TOMLSyntaxError(position: last.position,
                                      message: "table [\(name)] is already defined by dotted keys at \(entry.position)")
            }
        case .tables:
            throw TOMLSyntaxError(position: last.position,
                                  message: "\(name) is an array of tables (at \(entry.position)); "
                                      + "write [[\(name)]] to add an element to it")
        case .value(let value):
            throw TOMLSyntaxError(position: last.position,
                                  message: "cannot define table [\(name)]: \(name) is already "
                                      + "\(value.kindName) (at \(entry.position))")
        }
    }

    /// `[[a.b.c]]`: a new table appended to the array `a.b.c` (made when absent).
    mutating func openArrayElement(_ path: [KeyPart]) throws(TOMLSyntaxError) -> TableID {
        let parent = try walkToParent(of: path)
        let last = path[path.count - 1]
        guard let at = tables[parent].entries.index(of: last.name) else {
            let id = newTable(.header)
            tables[parent].entries.append(Entry(key: last.name, position: last.position, slot: .tables([id])))
            return id
        }
        let entry = tables[parent].entries[at]
        let name = Self.dotted(path)
        switch entry.slot {
        case .tables(var ids):
            let id = newTable(.header)
            // Moved out before appending so the array is not copied: each element stays O(1).
            tables[parent].entries[at].slot = .tables([])
            ids.append(id)
            tables[parent].entries[at].slot = .tables(ids)
            return id
        case .table:
            throw TOMLSyntaxError(position: last.position,
                                  message: "cannot define [[\(name)]]: \(name) is already a table (at \(entry.position))")
        case .value(.array):
            throw TOMLSyntaxError(position: last.position,
                                  message: "cannot add to \(name) with [[\(name)]]: it is an array "
                                      + "written as a value (at \(entry.position)), which cannot be extended")
        case .value(let value):
            throw TOMLSyntaxError(position: last.position,
                                  message: "cannot define [[\(name)]]: \(name) is already "
                                      + "\(value.kindName) (at \(entry.position))")
        }
    }

    /// `a.b.c = value` in `table`, the table of the header `section` (whose
    /// path only names things in messages). Conflicts are reported at
    /// `valueAt`, where the value that cannot be stored begins.
    mutating func define(_ path: [KeyPart], _ value: TOMLValue, in table: TableID, section: [KeyPart] = [],
                         valueAt: TOMLPosition) throws(TOMLSyntaxError) {
        var current = table
        for (depth, part) in path.dropLast().enumerated() {
            guard let at = tables[current].entries.index(of: part.name) else {
                current = add(part, origin: .dotted, to: current)
                continue
            }
            let entry = tables[current].entries[at]
            let name = Self.dotted(section + path[...depth])
            switch entry.slot {
            case .table(let id) where tables[id].origin != .header:
                tables[id].origin = .dotted
                current = id
            case .table:
                throw TOMLSyntaxError(position: valueAt,
                                      message: "dotted keys cannot add to table [\(name)], which its header "
                                          + "defines (at \(entry.position)); write the key under that header")
            case .tables:
                throw TOMLSyntaxError(position: valueAt,
                                      message: "dotted keys cannot add to \(name), an array of tables (at \(entry.position))")
            case .value(let existing):
                throw TOMLSyntaxError(position: valueAt,
                                      message: "cannot define \(Self.dotted(section + path)): \(name) is already "
                                          + "\(existing.kindName) (at \(entry.position))")
            }
        }
        let last = path[path.count - 1]
        if let at = tables[current].entries.index(of: last.name) {
            throw TOMLSyntaxError(position: valueAt,
                                  message: "key \(Self.dotted(section + path)) is already defined at "
                                      + "\(tables[current].entries[at].position)")
        }
        tables[current].entries.append(Entry(key: last.name, position: last.position, slot: .value(value)))
    }

    /// The finished tree from `table` down.
    func finish(_ table: TableID = TOMLTableBuilder.root) -> TOMLTable {
        var result = TOMLTable()
        for entry in tables[table].entries.elements {
            let value: TOMLValue = switch entry.slot {
            case .value(let value): value
            case .table(let id): .table(finish(id))
            case .tables(let ids): .array(ids.map { .table(finish($0)) })
            }
            result.append(entry.key, value, at: entry.position)
        }
        return result
    }

    /// Walks the header path `path` minus its last part, making the tables
    /// that do not exist yet; through an array of tables it goes into the
    /// last element, as TOML 1.0 says headers below `[[a]]` do.
    private mutating func walkToParent(of path: [KeyPart]) throws(TOMLSyntaxError) -> TableID {
        var current = TOMLTableBuilder.root
        for (depth, part) in path.dropLast().enumerated() {
            guard let at = tables[current].entries.index(of: part.name) else {
                current = add(part, origin: .implicit, to: current)
                continue
            }
            let entry = tables[current].entries[at]
            switch entry.slot {
            case .table(let id): current = id
            case .tables(let ids): current = ids[ids.count - 1]
            case .value(let value):
                let name = Self.dotted(path[...depth])
                throw TOMLSyntaxError(position: part.position,
                                      message: "cannot define [\(Self.dotted(path))]: \(name) is already "
                                          + "\(value.kindName) (at \(entry.position))"
                                          + (value.table != nil || value.array != nil ? ", which cannot be extended" : ""))
            }
        }
        return current
    }

    private mutating func add(_ part: KeyPart, origin: Origin, to parent: TableID) -> TableID {
        let id = newTable(origin)
        tables[parent].entries.append(Entry(key: part.name, position: part.position, slot: .table(id)))
        return id
    }

    private mutating func newTable(_ origin: Origin) -> TableID {
        tables.append(Table(origin: origin))
        return tables.count - 1
    }

    /// `a.b."c d"`: the path as TOML would write it, for messages.
    static func dotted(_ path: some Collection<KeyPart>) -> String {
        path.map { isBare($0.name) ? $0.name : quoted($0.name) }.joined(separator: ".")
    }

    /// A key that needs no quotes: `A-Za-z0-9_-`, at least one.
    static func isBare(_ key: String) -> Bool {
        !key.isEmpty && key.utf8.allSatisfy(TOMLParser.isBareKeyByte)
    }
}
