/// The request line of an HTTP/1.x request head, read from the bytes received so far.
/// Pure (bytes in, value out), never reads past its input, and tells "need more
/// bytes" from "invalid" like the PROXY codec: the server reads until the head is
/// complete, is invalid, or passes ``HTTPRequestHead/maxBytes``.
struct HTTPRequestHead: Equatable, Sendable {
    /// Request heads longer than this are refused (431): a scraper's is a few hundred bytes.
    static let maxBytes = 8 << 10

    let method: String
    /// The request target without its query: `/metrics` for `/metrics?x=1`.
    let path: String

    enum Parse: Equatable, Sendable {
        /// The head has not ended yet (no blank line): read more.
        case needMore
        /// Not an HTTP/1.x request line.
        case invalid
        /// The head passed ``HTTPRequestHead/maxBytes`` without ending.
        case tooLarge
        case complete(HTTPRequestHead)
    }

    /// Looks for the end of the head (`\r\n\r\n`, or a bare `\n\n` as RFC 9112 §2.2
    /// tolerates) and parses its first line; header fields are not needed and are skipped.
    static func parse(_ bytes: ArraySlice<UInt8>) -> Parse {
        guard let end = headEnd(bytes) else {
            // The line cannot become valid later: say so now rather than wait for the time box.
            if let newline = bytes.firstIndex(of: UInt8(ascii: "\n")), requestLine(bytes[..<newline]) == nil { return .invalid }
            return bytes.count >= maxBytes ? .tooLarge : .needMore
        }
        guard end <= bytes.startIndex + maxBytes else { return .tooLarge }
        let newline = bytes[..<end].firstIndex(of: UInt8(ascii: "\n"))!
        guard let head = requestLine(bytes[..<newline]) else { return .invalid }
        return .complete(head)
    }

    /// Index just past the blank line ending the head, or nil.
    private static func headEnd(_ bytes: ArraySlice<UInt8>) -> Int? {
        var i = bytes.startIndex
        while let newline = bytes[i...].firstIndex(of: UInt8(ascii: "\n")) {
            let next = newline + 1
            if next < bytes.endIndex && bytes[next] == UInt8(ascii: "\n") { return next + 1 }
            if next + 1 < bytes.endIndex && bytes[next] == UInt8(ascii: "\r") && bytes[next + 1] == UInt8(ascii: "\n") {
                return next + 2
            }
            i = next
        }
        return nil
    }

    /// `METHOD SP TARGET SP HTTP/1.x` (the `\r` before the `\n` optional).
    private static func requestLine(_ line: ArraySlice<UInt8>) -> HTTPRequestHead? {
        var line = line
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, parts[1].first == UInt8(ascii: "/"),
              parts[2].elementsEqual("HTTP/1.1".utf8) || parts[2].elementsEqual("HTTP/1.0".utf8) else { return nil }
        // A token (RFC 9110 §5.6.2), upper-case letters being all a method needs here.
        guard parts[0].allSatisfy({ $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) else { return nil }
        guard parts[1].allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        let target = parts[1]
        let path = target.firstIndex(of: UInt8(ascii: "?")).map { target[..<$0] } ?? target
        return HTTPRequestHead(method: String(decoding: parts[0], as: UTF8.self), path: String(decoding: path, as: UTF8.self))
    }
}
