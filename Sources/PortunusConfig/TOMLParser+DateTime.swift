// RFC 3339 dates and times as TOML 1.0 takes them: `1979-05-27`,
// `07:32:00.5`, `1979-05-27T07:32:00Z`, `1979-05-27 07:32:00-07:00`.

extension TOMLParser {
    /// A local date, or a date-time (local, or with `Z` / `±HH:MM`). The date and
    /// time may be joined by `T`, `t` or one space.
    mutating func parseDateOrDateTime() throws(TOMLSyntaxError) -> TOMLValue {
        let start = mark
        let year = try digits(4, "year")
        try expect("-", in: "date")
        let month = try digits(2, "month")
        try expect("-", in: "date")
        let day = try digits(2, "day")
        guard (1...12).contains(month) else { throw fail("month \(padded(month, 2)) is not 01 to 12", at: start) }
        guard let date = TOMLDate(year: year, month: month, day: day) else {
            let days = TOMLDate.days(inMonth: month, year: year)
            throw fail(year == 0 ? "year 0000 is not allowed (years are 0001 to 9999)"
                       : "\(padded(year, 4))-\(padded(month, 2))-\(padded(day, 2)) is not a date: "
                           + "that month has \(days) days", at: start)
        }
        // A space joins a time only when a time follows; otherwise the date ends there.
        let joined = peek(is: "T") || peek(is: "t")
            || (peek(is: " ") && isDigits(at: offset + 1, count: 2) && peek(is: ":", 3))
        guard joined else {
            try checkEnd(of: "date", start: start)
            return .localDate(date)
        }
        offset += 1
        let time = try parseTime(ending: false)
        let value: TOMLValue
        if peek(is: "Z") || peek(is: "z") {
            offset += 1
            value = .offsetDateTime(date, time, offsetMinutes: 0)
        } else if peek(is: "+") || peek(is: "-") {
            let sign = peek(is: "-") ? -1 : 1
            let offsetStart = mark
            offset += 1
            let hours = try digits(2, "offset hours")
            try expect(":", in: "offset")
            let minutes = try digits(2, "offset minutes")
            guard hours <= 23, minutes <= 59 else {
                throw fail("offset \(padded(hours, 2)):\(padded(minutes, 2)) is not within 00:00 to 23:59",
                           at: offsetStart)
            }
            value = .offsetDateTime(date, time, offsetMinutes: sign * (hours * 60 + minutes))
        } else {
            value = .localDateTime(date, time)
        }
        try checkEnd(of: "date-time", start: start)
        return value
    }

    /// `HH:MM:SS` with an optional fraction (at least one digit; past nine,
    /// digits are dropped). Seconds are required: TOML 1.0 has no `HH:MM`.
    mutating func parseTime(ending: Bool = true) throws(TOMLSyntaxError) -> TOMLTime {
        let start = mark
        let hour = try digits(2, "hour")
        try expect(":", in: "time")
        let minute = try digits(2, "minute")
        try expect(":", in: "time (seconds are required)")
        let second = try digits(2, "second")
        var nanosecond = 0
        if peek(is: ".") {
            offset += 1
            guard let first = peek(), Self.isDigit(first) else {
                throw fail("expected a digit after '.' in the time, found \(describe(offset))")
            }
            var scale = 100_000_000
            while let byte = peek(), Self.isDigit(byte) {
                nanosecond += Int(byte - UInt8(ascii: "0")) * scale
                scale /= 10
                offset += 1
            }
        }
        guard let time = TOMLTime(hour: hour, minute: minute, second: second, nanosecond: nanosecond) else {
            let field = hour > 23 ? "hour \(padded(hour, 2)) is not 00 to 23"
                : minute > 59 ? "minute \(padded(minute, 2)) is not 00 to 59"
                : "second \(padded(second, 2)) is not 00 to 59"
            throw fail(field, at: start)
        }
        if ending { try checkEnd(of: "time", start: start) }
        return time
    }

    /// Exactly `count` decimal digits.
    private mutating func digits(_ count: Int, _ field: String) throws(TOMLSyntaxError) -> Int {
        guard isDigits(at: offset, count: count) else {
            // The first byte that is not a digit; the end of the file when the digits run into it.
            let index = (offset..<min(offset + count, bytes.count)).first { !Self.isDigit(bytes[$0]) } ?? bytes.count
            throw fail("expected \(count) digits for the \(field), found \(describe(index))",
                       at: Mark(offset: index, line: line, lineStart: lineStart))
        }
        var value = 0
        for _ in 0..<count {
            value = value * 10 + Int(bytes[offset] - UInt8(ascii: "0"))
            offset += 1
        }
        return value
    }

    private mutating func expect(_ separator: Unicode.Scalar, in what: String) throws(TOMLSyntaxError) {
        guard peek(is: separator) else {
            throw fail("expected '\(separator)' in the \(what), found \(describe(offset))")
        }
        offset += 1
    }
}
