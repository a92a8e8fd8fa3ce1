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
        /// Where it was made or defined, for "already defined at" messages: the
        /// header's '[' once a header defines it, else the key part that made it.
        var definedAt: TOMLPosition
        var entries = KeyedList<Entry>()
    }

    private var tables = [Table(origin: .header, definedAt: TOMLPosition(line: 1, column: 1))]

    /// `[a.b.c]`: the table the header opens, defining it. Errors point at the
    /// header's '[' (`headerAt`), where toml++ pointed too.
    mutating func openTable(_ path: [KeyPart], headerAt: TOMLPosition) throws(TOMLSyntaxError) -> TableID {
        let parent = try walkToParent(of: path, headerAt: headerAt)
        let last = path[path.count - 1]
        guard let at = tables[parent].entries.index(of: last.name) else {
            let id = add(last, origin: .header, to: parent)
            tables[id].definedAt = headerAt
            return id
        }
        let entry = tables[parent].entries[at]
        let name = Self.dotted(path)
        switch entry.slot {
        case .table(let id):
            let earlier = tables[id].definedAt
            switch tables[id].origin {
            case .implicit:
                tables[id].origin = .header
                tables[id].definedAt = headerAt
                return id
            case .header:
                throw TOMLSyntaxError(position: headerAt, message: "table [\(name)] is already defined at \(earlier)")
            case .dotted:
                throw TOMLSyntaxError(position: headerAt,
                                      message: "table [\(name)] is already defined by dotted keys at \(earlier)")
            }
        case .tables(let ids):
            throw TOMLSyntaxError(position: headerAt,
                                  message: "\(name) is an array of tables (at \(tables[ids[0]].definedAt)); "
                                      + "write [[\(name)]] to add an element to it")
        case .value(let value):
            throw TOMLSyntaxError(position: headerAt,
                                  message: "cannot define table [\(name)]: \(name) is already "
                                      + "\(value.kindName) (at \(entry.position))")
        }
    }

    /// `[[a.b.c]]`: a new table appended to the array `a.b.c` (made when absent).
    mutating func openArrayElement(_ path: [KeyPart], headerAt: TOMLPosition) throws(TOMLSyntaxError) -> TableID {
        let parent = try walkToParent(of: path, headerAt: headerAt)
        let last = path[path.count - 1]
        guard let at = tables[parent].entries.index(of: last.name) else {
            let id = newTable(.header, definedAt: headerAt)
            tables[parent].entries.append(Entry(key: last.name, position: last.position, slot: .tables([id])))
            return id
        }
        let entry = tables[parent].entries[at]
        let name = Self.dotted(path)
        switch entry.slot {
        case .tables(var ids):
            let id = newTable(.header, definedAt: headerAt)
            // Moved out before appending so the array is not copied: each element stays O(1).
            tables[parent].entries[at].slot = .tables([])
            ids.append(id)
            tables[parent].entries[at].slot = .tables(ids)
            return id
        case .table(let id):
            throw TOMLSyntaxError(position: headerAt, message: "cannot define [[\(name)]]: \(name) is already "
                                      + "a table (at \(tables[id].definedAt))")
        case .value(.array):
            throw TOMLSyntaxError(position: headerAt,
                                  message: "cannot add to \(name) with [[\(name)]]: it is an array "
                                      + "written as a value (at \(entry.position)), which cannot be extended")
        case .value(let value):
            throw TOMLSyntaxError(position: headerAt,
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
            case .table(let id):
                throw TOMLSyntaxError(position: valueAt,
                                      message: "dotted keys cannot add to table [\(name)], which its header "
                                          + "defines (at \(tables[id].definedAt)); write the key under that header")
            case .tables(let ids):
                throw TOMLSyntaxError(position: valueAt,
                                      message: "dotted keys cannot add to \(name), an array of tables "
                                          + "(at \(tables[ids[0]].definedAt))")
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
    private mutating func walkToParent(of path: [KeyPart], headerAt: TOMLPosition) throws(TOMLSyntaxError) -> TableID {
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
                throw TOMLSyntaxError(position: headerAt,
                                      message: "cannot define [\(Self.dotted(path))]: \(name) is already "
                                          + "\(value.kindName) (at \(entry.position))"
                                          + (value.table != nil || value.array != nil ? ", which cannot be extended" : ""))
            }
        }
        return current
    }

    private mutating func add(_ part: KeyPart, origin: Origin, to parent: TableID) -> TableID {
        let id = newTable(origin, definedAt: part.position)
        tables[parent].entries.append(Entry(key: part.name, position: part.position, slot: .table(id)))
        return id
    }

    private mutating func newTable(_ origin: Origin, definedAt: TOMLPosition) -> TableID {
        tables.append(Table(origin: origin, definedAt: definedAt))
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
