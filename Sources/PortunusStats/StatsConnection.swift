import Glibc

/// The longest path a Unix socket address holds (`sun_path` less its NUL).
let maxUnixPathBytes = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

/// `path` as a Unix socket address; nil when empty or too long.
func unixSocketAddress(_ path: String) -> sockaddr_un? {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard !bytes.isEmpty, bytes.count <= maxUnixPathBytes else { return nil }
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
    return address
}

/// Why the stats socket could not be read, in words for the operator.
public struct StatsClientError: Error, CustomStringConvertible {
    public let description: String
}

/// A client of the stats socket: connects, then reads its `\n`-ended JSON lines.
public final class StatsConnection {
    private let fd: Int32
    private var buffer: [UInt8] = []
    /// A line longer than this is refused rather than buffered without end.
    static let maxLineBytes = 16 << 20

    public init(path: String) throws(StatsClientError) {
        guard var address = unixSocketAddress(path) else {
            throw StatsClientError(description: "\(path): not a usable socket path (empty or longer than \(maxUnixPathBytes) bytes)")
        }
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw StatsClientError(description: "socket: \(String(cString: strerror(errno)))") }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            close(fd)
            let hint = switch e {
            case ENOENT: " (no socket there: is portunus-uring running with its stats socket at this path? --socket PATH names another)"
            case ECONNREFUSED: " (nobody serves it: a stale socket left by a daemon that is gone)"
            case EACCES: " (the socket is mode 0660: run as its owner or group)"
            default: ""
            }
            throw StatsClientError(description: "cannot connect to \(path): \(String(cString: strerror(e)))\(hint)")
        }
    }

    deinit { close(fd) }

    /// The descriptor, for callers that poll it alongside other input (the dashboard).
    public var fileDescriptor: Int32 { fd }

    /// The next line without its newline; waits at most `timeoutMs` (negative: forever).
    public func readLine(timeoutMs: Int32) throws(StatsClientError) -> String {
        if let line = takeLine() { return line }
        let deadline = StatsDocuments.monotonicMs() + UInt64(max(timeoutMs, 0))
        while true {
            var wait = timeoutMs
            if timeoutMs >= 0 {
                let now = StatsDocuments.monotonicMs()
                guard now < deadline else { throw StatsClientError(description: "no line from the stats socket within \(timeoutMs) ms") }
                wait = Int32(deadline - now)
            }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, wait)
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 { continue }
            try readAvailable()
            if let line = takeLine() { return line }
        }
    }

    /// Reads what the socket holds now (after poll said it is readable).
    public func readAvailable() throws(StatsClientError) {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &chunk, chunk.count, 0)
        if n < 0 && errno == EINTR { return }
        guard n > 0 else {
            throw StatsClientError(description: n == 0 ? "the stats socket closed the connection" : "read: \(String(cString: strerror(errno)))")
        }
        buffer += chunk[0..<n]
        guard buffer.count <= Self.maxLineBytes else { throw StatsClientError(description: "a line longer than \(Self.maxLineBytes) bytes") }
    }

    /// A complete line already read, if any.
    public func takeLine() -> String? {
        guard let end = buffer.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let line = String(decoding: buffer[0..<end], as: UTF8.self)
        buffer.removeSubrange(0...end)
        return line
    }

    /// `stats --once`: the hello and the first snapshot, as one document
    /// `{"hello":…,"snapshot":…}`.
    public static func once(path: String, timeoutMs: Int32 = 10_000) throws(StatsClientError) -> JSON {
        let connection = try StatsConnection(path: path)
        let hello = try parse(connection.readLine(timeoutMs: timeoutMs), what: "hello")
        let snapshot = try parse(connection.readLine(timeoutMs: timeoutMs), what: "snapshot")
        guard hello["v"]?.uint64Value == 1 else { throw StatsClientError(description: "the hello is not version 1: \(hello.compact.prefix(200))") }
        return .object([("hello", hello), ("snapshot", snapshot)])
    }

    static func parse(_ line: String, what: String) throws(StatsClientError) -> JSON {
        do {
            return try JSON.parse(line)
        } catch {
            throw StatsClientError(description: "the \(what) line is not JSON: \(error)")
        }
    }
}
