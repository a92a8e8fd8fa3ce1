import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A blocking TCP socket for tests, on 127.0.0.1 or ::1 only.
public final class TestSocket: @unchecked Sendable {
    // @unchecked: a test uses one socket from at most two threads, one writing and one
    // reading, which the kernel allows on a socket.
    public let fd: Int32

    public init(fd: Int32) { self.fd = fd }

    deinit { close() }

    private var closed = false

    /// Connects to `host` ("127.0.0.1" or "::1") with a receive timeout. A small
    /// `receiveBufferBytes` (SO_RCVBUF, set before the connect so the window stays
    /// small) makes a client that does not read stall its sender quickly.
    /// `from`: a local address to connect from (another loopback address, 127.0.0.2, so
    /// that a client is told apart from a proxy on 127.0.0.1).
    public static func connect(_ host: String = "127.0.0.1", _ port: UInt16, receiveTimeoutSecs: Int = 20,
                               receiveBufferBytes: Int32? = nil, from source: String? = nil) throws -> TestSocket {
        let v6 = host.contains(":")
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestError("socket: errno \(errno)") }
        let s = TestSocket(fd: fd)
        if let source, withSocketAddress(source, 0, { bind(fd, $0, $1) }) != 0 {
            throw TestError("bind \(source): errno \(errno)")
        }
        s.setReceiveTimeout(seconds: receiveTimeoutSecs)
        if var size = receiveBufferBytes {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        let rc = withSocketAddress(host, port) { Glibc.connect(fd, $0, $1) }
        guard rc == 0 else { throw TestError("connect \(host):\(port): errno \(errno)") }
        return s
    }

    public func setReceiveTimeout(seconds: Int) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    public func sendAll(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw TestError("send: errno \(errno)")
            }
            offset += n
        }
    }

    /// Reads until EOF (or `limit` bytes). Throws on timeout or error (e.g. ECONNRESET).
    public func receiveAll(limit: Int = .max) throws -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 256 * 1024)
        while out.count < limit {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, min($0.count, limit - out.count), 0) }
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR { continue }
                throw TestError("recv: errno \(errno) (\(String(cString: strerror(errno)))) after \(out.count) bytes")
            }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }

    /// Reads exactly `count` bytes.
    public func receive(exactly count: Int) throws -> [UInt8] {
        let bytes = try receiveAll(limit: count)
        guard bytes.count == count else { throw TestError("EOF after \(bytes.count) of \(count) bytes") }
        return bytes
    }

    /// What one recv returns: bytes, [] for EOF, or the errno (ECONNRESET...).
    public func receiveOnce() -> Result<[UInt8], TestError> {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 { return .failure(TestError("errno \(errno)", errno: errno)) }
        return .success(Array(chunk[0..<n]))
    }

    public func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    public func close() {
        if !closed { closed = true; Glibc.close(fd) }
    }
}

public struct TestError: Error, CustomStringConvertible {
    public let description: String
    public let errno: Int32
    public init(_ description: String, errno: Int32 = 0) { self.description = description; self.errno = errno }
}

/// Random bytes (not cryptographic; reproducible per seed).
public func randomBytes(_ count: Int, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) -> [UInt8] {
    var state = seed | 1
    var out = [UInt8](repeating: 0, count: count)
    out.withUnsafeMutableBytes { raw in
        var i = 0
        while i + 8 <= count {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            raw.storeBytes(of: state, toByteOffset: i, as: UInt64.self)
            i += 8
        }
        while i < count {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            raw[i] = UInt8(truncatingIfNeeded: state); i += 1
        }
    }
    return out
}

/// Listen ports handed out by ``freePort(_:)``: below the ephemeral range (32768–60999
/// here), from a random start, never the same twice in one test process.
private final class ListenPortPicker: @unchecked Sendable {
    // @unchecked: `next` is guarded by `lock`.
    private let lock = NSLock()
    private var next = UInt16.random(in: 10_000...20_000)

    func take() -> UInt16 {
        lock.withLock {
            if next >= 32_000 { next = 10_000 }
            next += 1
            return next
        }
    }
}

private let listenPorts = ListenPortPicker()

/// A TCP port nobody listens on right now, for a forwarder's listener. Not one the
/// kernel picks for bind(0): those come from the ephemeral range, where any test's
/// outgoing connect may take the port between this call and the forwarder's bind.
public func freePort(_ host: String = "127.0.0.1") -> UInt16 {
    let v6 = host.contains(":")
    while true {
        let port = listenPorts.take()
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let bound = withSocketAddress(host, port) { bind(fd, $0, $1) } == 0
        Glibc.close(fd)
        if bound && canBind(port: port) { return port }
    }
}

/// `count` distinct ports nobody listens on right now.
public func freePorts(_ count: Int, _ host: String = "127.0.0.1") -> [UInt16] {
    (0..<count).map { _ in freePort(host) }
}

/// Whether a wildcard TCP bind of `port` succeeds right now (IPv4 and IPv6).
public func canBind(port: UInt16) -> Bool {
    for v6 in [false, true] {
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { Glibc.close(fd) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if v6 { setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size)) }
        let rc = withSocketAddress(v6 ? "::" : "0.0.0.0", port) { bind(fd, $0, $1) }
        if rc != 0 { return false }
    }
    return true
}

/// Calls `body` with the C socket address of `host` ("127.0.0.1", "::1", "::", ...) and `port`.
public func withSocketAddress<R>(_ host: String, _ port: UInt16, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
    if host.contains(":") {
        var sin6 = sockaddr_in6()
        sin6.sin6_family = sa_family_t(AF_INET6)
        sin6.sin6_port = port.bigEndian
        inet_pton(AF_INET6, host, &sin6.sin6_addr)
        return withUnsafePointer(to: &sin6) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
    }
    var sin = sockaddr_in()
    sin.sin_family = sa_family_t(AF_INET)
    sin.sin_port = port.bigEndian
    inet_pton(AF_INET, host, &sin.sin_addr)
    return withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
}
