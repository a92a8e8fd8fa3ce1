import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real TCP backend on 127.0.0.1 or ::1 with an ephemeral port, a thread per
/// connection. Stops (and closes every socket) on `stop()` or deinit.
public final class TestBackend: @unchecked Sendable {
    // @unchecked: mutable state is guarded by `lock`.
    public enum Behaviour: Sendable {
        /// Echo every byte back; on EOF from the client, shut down the write side and close.
        case echo
        /// Send `greeting`, shut down the write side at once, then read until EOF and
        /// record what arrived.
        case greetThenHalfClose([UInt8])
        /// Listen with a backlog of 0 and never accept (connections pile up in the SYN
        /// queue once the tiny accept queue is full).
        case neverAccept
        /// Send `bytes` of `fill` while reading and discarding what the client sends, then
        /// close. Connection `k` (counting from 0) is reset by the backend (SO_LINGER 0)
        /// after `resetAfterSent(k)` bytes sent, when that is not nil.
        case flood(bytes: Int, fill: UInt8, resetAfterSent: @Sendable (Int) -> Int?)
    }

    public let port: UInt16
    public let host: String
    private let listenFD: Int32
    private let behaviour: Behaviour
    private let lock = NSLock()
    private var stopped = false
    private var _received: [[UInt8]] = []
    private var _accepted = 0
    private var acceptThread: Thread?

    /// `port` 0 picks an ephemeral port.
    public init(_ behaviour: Behaviour, host: String = "127.0.0.1", port requested: UInt16 = 0) throws {
        self.behaviour = behaviour
        self.host = host
        let v6 = host.contains(":")
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let rc = withSocketAddress(host, requested) { bind(fd, $0, $1) }
        guard rc == 0 else { Glibc.close(fd); throw TestError("bind: errno \(errno)") }
        if case .neverAccept = behaviour { listen(fd, 0) } else { listen(fd, 1024) }
        port = TestSocket(fd: dup(fd)).localAddress.port
        listenFD = fd
        if case .neverAccept = behaviour { return }
        let thread = Thread { [weak self] in self?.acceptLoop() }
        acceptThread = thread
        thread.start()
    }

    deinit { stop() }

    /// Connections accepted so far.
    public var accepted: Int { lock.withLock { _accepted } }
    /// For `.greetThenHalfClose`: the bytes each finished connection sent.
    public var received: [[UInt8]] { lock.withLock { _received } }

    public func stop() {
        let first = lock.withLock { () -> Bool in
            defer { stopped = true }
            return !stopped
        }
        if first { shutdown(listenFD, Int32(SHUT_RDWR)); Glibc.close(listenFD) }
    }

    private var isStopped: Bool { lock.withLock { stopped } }

    private func acceptLoop() {
        while !isStopped {
            var pfd = pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 100) > 0 else { continue }
            let client = accept(listenFD, nil, nil)
            guard client >= 0 else { continue }
            let index = lock.withLock { defer { _accepted += 1 }; return _accepted }
            let behaviour = self.behaviour
            Thread { [weak self] in self?.serve(client, index, behaviour) }.start()
        }
    }

    private func serve(_ fd: Int32, _ index: Int, _ behaviour: Behaviour) {
        var tv = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let socket = TestSocket(fd: fd)
        switch behaviour {
        case .echo:
            var chunk = [UInt8](repeating: 0, count: 256 * 1024)
            while true {
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                if (try? socket.sendAll(Array(chunk[0..<n]))) == nil { break }
            }
            socket.shutdownWrite()
        case let .greetThenHalfClose(greeting):
            try? socket.sendAll(greeting)
            socket.shutdownWrite()
            let bytes = (try? socket.receiveAll()) ?? []
            lock.withLock { _received.append(bytes) }
        case .neverAccept:
            break
        case let .flood(bytes, fill, resetAfterSent):
            let resetAt = resetAfterSent(index)
            let outcome = StreamingPeer.pump(fd, sendBytes: bytes, fill: fill, stopAfterSent: resetAt, shutdownWhenSent: true)
            if outcome.reachedStop { socket.resetClose(); return }
        }
        socket.close()
    }
}
