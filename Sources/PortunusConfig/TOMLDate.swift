// The calendar part of TOML's date-time values (RFC 3339 `full-date`).

/// A calendar date as TOML writes it, `1979-05-27`: a local date on its own,
/// or the date part of a local or offset date-time. Always a real date
/// (the parser checks the day against the month, leap years included).
public struct TOMLDate: Sendable, Hashable, CustomStringConvertible {
    /// 1...9999 (four digits; year 0 is refused, as Python's `datetime` does).
    public let year: Int
    /// 1...12.
    public let month: Int
    /// 1...28, 29, 30 or 31, depending on the month.
    public let day: Int

    /// Creates a date; nil when the day does not exist.
    public init?(year: Int, month: Int, day: Int) {
        guard (1...9999).contains(year), (1...12).contains(month),
              (1...TOMLDate.days(inMonth: month, year: year)).contains(day) else { return nil }
        self.year = year
        self.month = month
        self.day = day
    }

    /// Days in `month` (1...12) of `year`, in the proleptic Gregorian calendar RFC 3339 uses.
    static func days(inMonth month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// `YYYY-MM-DD`.
    public var description: String {
        padded(year, 4) + "-" + padded(month, 2) + "-" + padded(day, 2)
    }
}

/// `value` in decimal, zero-padded on the left to `width` digits.
func padded(_ value: Int, _ width: Int) -> String {
    let digits = String(value)
    return String(repeating: "0", count: max(0, width - digits.count)) + digits
}
