import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A UDP socket for the tests: bound to `host` (port 0: ephemeral), with a receive
/// timeout, sending to and receiving from anyone.
public final class UDPSocket: @unchecked Sendable {
    // @unchecked: used from one thread at a time.
    public private(set) var fd: Int32
    public let host: String
    public private(set) var port: UInt16 = 0
    /// errno of the last failed receive (EAGAIN: the timeout ran out).
    public private(set) var lastErrno: Int32 = 0

    public init(_ host: String = "127.0.0.1", port requested: UInt16 = 0, receiveTimeoutMs: Int = 2000) throws {
        self.host = host
        fd = socket(host.contains(":") ? AF_INET6 : AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw TestError("socket: errno \(errno)") }
        // Only for a chosen port (a backend coming back on its old one): with SO_REUSEADDR
        // on port 0, two sockets can be handed the same ephemeral port.
        if requested != 0 {
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        // Room for a burst (past net.core.rmem_max when running as root, as CI does).
        var size: Int32 = 4 << 20
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var tv = timeval(tv_sec: receiveTimeoutMs / 1000, tv_usec: (receiveTimeoutMs % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard withSocketAddress(host, requested, { bind(fd, $0, $1) }) == 0 else {
            Glibc.close(fd)
            throw TestError("bind \(host):\(requested): errno \(errno)")
        }
        port = TestSocket(fd: dup(fd)).localAddress.port
    }

    deinit { close() }

    public func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// Connects the socket to `host`:`port`: from then on it takes datagrams from there
    /// only, as most UDP clients do (a reply from another address never reaches them).
    public func connect(to port: UInt16, host: String) throws {
        guard withSocketAddress(host, port, { Glibc.connect(fd, $0, $1) }) == 0 else {
            throw TestError("connect \(host):\(port): errno \(errno)")
        }
    }

    public func send(_ bytes: [UInt8], to port: UInt16, host: String? = nil) throws {
        let n = withSocketAddress(host ?? self.host, port) { sendto(fd, bytes, bytes.count, 0, $0, $1) }
        guard n == bytes.count else { throw TestError("sendto: \(n), errno \(errno)") }
    }

    /// One datagram and the port it came from; nil on timeout.
    public func receive() -> (bytes: [UInt8], fromPort: UInt16)? {
        var buffer = [UInt8](repeating: 0, count: 70_000)
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        var n = -1
        repeat {
            n = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, &buffer, buffer.count, 0, $0, &length) }
            }
        } while n < 0 && errno == EINTR
        guard n >= 0 else { lastErrno = errno; return nil }
        let family = Int32(storage.ss_family)
        let port = withUnsafePointer(to: &storage) { p -> UInt16 in
            family == AF_INET6
                ? UInt16(bigEndian: UnsafeRawPointer(p).load(as: sockaddr_in6.self).sin6_port)
                : UInt16(bigEndian: UnsafeRawPointer(p).load(as: sockaddr_in.self).sin_port)
        }
        return (Array(buffer[0..<n]), port)
    }
}

/// A UDP echo backend on its own thread: every datagram goes back to its sender;
/// records the source ports seen. `stop()` closes its socket (its port then answers
/// with ICMP port unreachable).
public final class UDPEchoBackend: @unchecked Sendable {
    // @unchecked: `sources` is guarded by `lock`; the socket is the thread's.
    public let port: UInt16
    private let socket: UDPSocket
    private let lock = NSLock()
    private var _sources: [UInt16] = []
    private var stopped = false
    private let done = DispatchSemaphore(value: 0)

    public init(_ host: String = "127.0.0.1", port: UInt16 = 0) throws {
        socket = try UDPSocket(host, port: port, receiveTimeoutMs: 100)
        self.port = socket.port
        Thread { [self] in
            while !lock.withLock({ stopped }) {
                guard let (bytes, from) = socket.receive() else { continue }
                lock.withLock { _sources.append(from) }
                try? socket.send(bytes, to: from)
            }
            done.signal()
        }.start()
    }

    /// Source ports of the datagrams received, in order.
    public var sources: [UInt16] { lock.withLock { _sources } }

    public func stop() {
        let wasStopped = lock.withLock { () -> Bool in defer { stopped = true }; return stopped }
        if !wasStopped {
            done.wait()
            socket.close()
        }
    }

    deinit { stop() }
}

/// A port free for UDP on 127.0.0.1 and ::1, and for TCP, below the ephemeral range
/// (IO_URING_NOTES.md: TIME_WAIT sockets crowd the ephemeral one after a load run).
public func freeUDPListenPort() -> UInt16 {
    while true {
        let port = UInt16.random(in: 20_000...29_000)
        if canBind(port: port), (try? UDPSocket("127.0.0.1", port: port)) != nil, (try? UDPSocket("::1", port: port)) != nil { return port }
    }
}
