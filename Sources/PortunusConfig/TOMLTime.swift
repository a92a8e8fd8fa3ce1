// The clock part of TOML's date-time values (RFC 3339 `partial-time`).

/// A time of day as TOML writes it, `07:32:00.999`: a local time on its own,
/// or the time part of a local or offset date-time.
public struct TOMLTime: Sendable, Hashable, CustomStringConvertible {
    /// 0...23.
    public let hour: Int
    /// 0...59.
    public let minute: Int
    /// 0...59. RFC 3339 allows a leap second (60); it is refused here, as
    /// Python's `tomllib` and `datetime` do, since no config needs one.
    public let second: Int
    /// 0...999_999_999. Digits past nanoseconds are dropped, not rounded,
    /// as TOML 1.0 requires of extra precision.
    public let nanosecond: Int

    /// Creates a time; nil when a field is out of its range.
    public init?(hour: Int, minute: Int, second: Int, nanosecond: Int = 0) {
        guard (0...23).contains(hour), (0...59).contains(minute), (0...59).contains(second),
              (0...999_999_999).contains(nanosecond) else { return nil }
        self.hour = hour
        self.minute = minute
        self.second = second
        self.nanosecond = nanosecond
    }

    /// `HH:MM:SS`, then `.` and the fraction without trailing zeros when it is not 0.
    public var description: String {
        var text = padded(hour, 2) + ":" + padded(minute, 2) + ":" + padded(second, 2)
        if nanosecond != 0 {
            var fraction = padded(nanosecond, 9)
            while fraction.hasSuffix("0") { fraction.removeLast() }
            text += "." + fraction
        }
        return text
    }
}
