import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An HTTP/1.1 response as a test reads it: the status code, header fields (names
/// lower-cased), the body (chunked transfer decoded) and the bytes as received.
public struct HTTPResponse: Sendable {
    public let status: Int
    public let headers: [String: String]
    public let body: [UInt8]
    public let raw: [UInt8]

    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// Sends `request` (bytes as given) to `host:port` on loopback and reads the answer
/// until the server closes, within `timeoutSecs`.
public func httpExchange(_ host: String = "127.0.0.1", _ port: UInt16, request: [UInt8], timeoutSecs: Int = 10) throws -> HTTPResponse {
    let socket = try TestSocket.connect(host, port, receiveTimeoutSecs: timeoutSecs)
    defer { socket.close() }
    try socket.sendAll(request)
    let raw = try socket.receiveAll(limit: 64 << 20)
    return try parseHTTPResponse(raw)
}

/// `GET path` with `Connection: close`.
public func httpGet(_ host: String = "127.0.0.1", _ port: UInt16, _ path: String, timeoutSecs: Int = 10) throws -> HTTPResponse {
    let authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    let request = "GET \(path) HTTP/1.1\r\nHost: \(authority)\r\nUser-Agent: portunus-tests\r\nConnection: close\r\n\r\n"
    return try httpExchange(host, port, request: Array(request.utf8), timeoutSecs: timeoutSecs)
}

/// Splits a whole response; the body is as long as Content-Length says (checked), or
/// de-chunked, or everything to the close.
public func parseHTTPResponse(_ raw: [UInt8]) throws -> HTTPResponse {
    let separator: [UInt8] = Array("\r\n\r\n".utf8)
    guard let end = raw.indices.first(where: { raw[$0...].starts(with: separator) }) else {
        throw TestError("no end of the response head in \(raw.count) bytes: \(String(decoding: raw.prefix(200), as: UTF8.self))")
    }
    let head = String(decoding: raw[..<end], as: UTF8.self).components(separatedBy: "\r\n")
    let statusParts = head[0].split(separator: " ")
    guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."), let status = Int(statusParts[1]) else {
        throw TestError("not an HTTP status line: \(head[0])")
    }
    var headers: [String: String] = [:]
    for line in head.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { throw TestError("header line without a colon: \(line)") }
        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    var body = Array(raw[(end + 4)...])
    if let length = headers["content-length"] {
        guard Int(length) == body.count else { throw TestError("Content-Length \(length) but \(body.count) body bytes") }
    } else if headers["transfer-encoding"]?.lowercased() == "chunked" {
        body = try dechunk(body)
    }
    return HTTPResponse(status: status, headers: headers, body: body, raw: raw)
}

private func dechunk(_ bytes: [UInt8]) throws -> [UInt8] {
    var out: [UInt8] = [], i = 0
    while true {
        guard let lineEnd = bytes[i...].firstIndex(of: UInt8(ascii: "\n")) else { throw TestError("truncated chunk size") }
        let sizeText = String(decoding: bytes[i..<lineEnd], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let size = Int(sizeText.split(separator: ";").first ?? "", radix: 16) else { throw TestError("bad chunk size \(sizeText)") }
        i = lineEnd + 1
        if size == 0 { return out }
        guard i + size <= bytes.count else { throw TestError("truncated chunk") }
        out += bytes[i..<(i + size)]
        i += size + 2
    }
}
