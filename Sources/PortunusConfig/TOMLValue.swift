// One TOML value. Plain enums and structs all the way down, so a parsed
// document is freed like any other value once the config has been read
// (TOMLKit's tables never were).

/// A TOML 1.0 value.
public enum TOMLValue: Sendable, Equatable {
    /// A basic, literal or multi-line string, escapes resolved.
    case string(String)
    /// An integer; TOML 1.0 integers are signed 64-bit, larger ones are a syntax error.
    case integer(Int64)
    /// A float, including `inf` and `nan`.
    case float(Double)
    /// `true` or `false`.
    case boolean(Bool)
    /// `1979-05-27T07:32:00-07:00`: a date and time at an offset from UTC,
    /// in minutes east of UTC (`Z` is 0).
    case offsetDateTime(TOMLDate, TOMLTime, offsetMinutes: Int)
    /// `1979-05-27T07:32:00`: a date and time with no offset.
    case localDateTime(TOMLDate, TOMLTime)
    /// `1979-05-27`.
    case localDate(TOMLDate)
    /// `07:32:00`.
    case localTime(TOMLTime)
    /// `[ ... ]` or an array of tables (`[[name]]`); elements may be of mixed types.
    case array([TOMLValue])
    /// A `[table]`, an inline table, or a table made by dotted keys.
    case table(TOMLTable)

    /// The string, when this is one.
    public var string: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The integer, when this is one (a float is not converted).
    public var integer: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    /// The float, when this is one (an integer is not converted).
    public var float: Double? {
        if case .float(let value) = self { return value }
        return nil
    }

    /// The boolean, when this is one.
    public var bool: Bool? {
        if case .boolean(let value) = self { return value }
        return nil
    }

    /// The elements, when this is an array (of tables or of values).
    public var array: [TOMLValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    /// The table, when this is one.
    public var table: TOMLTable? {
        if case .table(let value) = self { return value }
        return nil
    }
}

extension TOMLValue {
    /// The kind of value in words, for syntax errors about redefinitions.
    var kindName: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .float: "a float"
        case .boolean: "a boolean"
        case .offsetDateTime, .localDateTime: "a date-time"
        case .localDate: "a date"
        case .localTime: "a time"
        case .array: "an array"
        case .table: "an inline table"
        }
    }
}
