import CLiburing
import Glibc

/// Synchronous socket, pipe and process calls. Every one goes through this file:
/// errno is read at once, EINTR is retried here, and failures carry the call's name.
public enum Sockets {
    /// A listening TCP socket on the wildcard address of `family` at `port`.
    /// IPv6 sockets are IPV6_V6ONLY so an IPv4 socket can share the port.
    /// `reusePort` lets every worker own a listener on the same port (SO_REUSEPORT):
    /// the kernel spreads new connections across them.
    public static func listener(_ family: SocketAddress.Family, port: UInt16, reusePort: Bool, backlog: Int32) throws(SystemError) -> Int32 {
        let fd = try bound(family, SOCK_STREAM, port: port, reusePort: reusePort)
        // Accepted sockets inherit TCP_NODELAY from the listener: one setsockopt per
        // port instead of one per connection.
        setNoDelay(fd)
        if listen(fd, backlog) != 0 { let e = lastError("listen"); _ = CLiburing.close(fd); throw e }
        return fd
    }

    /// A second descriptor for the socket behind `fd` (close-on-exec): a reload hands
    /// the listening sockets of the ports it keeps to the new engine this way, so the
    /// socket, its SO_REUSEPORT place and its backlog live on while either holds it.
    public static func duplicate(_ fd: Int32) throws(SystemError) -> Int32 {
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        if copy < 0 { throw lastError("fcntl(F_DUPFD_CLOEXEC)") }
        return copy
    }

    /// Whether urgent (MSG_OOB) data is next in the socket's stream (sockatmark(3)).
    public static func atUrgentMark(_ fd: Int32) -> Bool { sockatmark(fd) == 1 }

    /// A UDP socket bound to the wildcard address of `family` at `port` (IPv6 only
    /// for .ipv6), non-blocking, reporting each datagram's local address
    /// (IP_PKTINFO / IPV6_RECVPKTINFO): on a host with several addresses a reply must
    /// leave from the one the client wrote to, or a client whose socket is connected
    /// (most UDP clients: DNS stubs, QUIC) never sees it.
    public static func datagramListener(_ family: SocketAddress.Family, port: UInt16, reusePort: Bool) throws(SystemError) -> Int32 {
        let fd = try bound(family, SOCK_DGRAM, port: port, reusePort: reusePort)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var one: Int32 = 1
        let (level, option) = family == .ipv4 ? (Int32(IPPROTO_IP), PU_IP_PKTINFO) : (Int32(IPPROTO_IPV6), PU_IPV6_RECVPKTINFO)
        if setsockopt(fd, level, option, &one, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            let e = lastError(family == .ipv4 ? "setsockopt(IP_PKTINFO)" : "setsockopt(IPV6_RECVPKTINFO)")
            _ = CLiburing.close(fd)
            throw e
        }
        // A burst of new clients queues here while their flows are made: 4 MiB each
        // way, past net.core.rmem_max/wmem_max when the process may (CAP_NET_ADMIN).
        setBufferSizes(fd, 4 << 20)
        return fd
    }

    private static func bound(_ family: SocketAddress.Family, _ type: __socket_type, port: UInt16, reusePort: Bool) throws(SystemError) -> Int32 {
        let fd = socket(family == .ipv4 ? AF_INET : AF_INET6, Int32(type.rawValue | SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw lastError("socket") }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if reusePort, setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            let e = lastError("setsockopt(SO_REUSEPORT)"); _ = CLiburing.close(fd); throw e
        }
        if family == .ipv6, setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            let e = lastError("setsockopt(IPV6_V6ONLY)"); _ = CLiburing.close(fd); throw e
        }
        let wildcard = family == .ipv4
            ? SocketAddress(ipv4: [0, 0, 0, 0], port: port)
            : SocketAddress(ipv6: [UInt8](repeating: 0, count: 16), port: port)
        var storage = sockaddr_storage()
        let len = wildcard.write(to: &storage)
        let rc = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) }
        }
        if rc != 0 { let e = lastError("bind"); _ = CLiburing.close(fd); throw e }
        return fd
    }

    /// A UDP socket for one flow, connected to `address` (a UDP connect sends nothing:
    /// it fixes the peer, so only its datagrams arrive and ICMP errors are reported),
    /// non-blocking, with 1 MiB send and receive buffers (as Portunus's upstream sockets).
    public static func connectedDatagram(to address: SocketAddress) throws(SystemError) -> Int32 {
        let fd = socket(address.family == .ipv4 ? AF_INET : AF_INET6, Int32(SOCK_DGRAM.rawValue | SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue), 0)
        if fd < 0 { throw lastError("socket") }
        setBufferSizes(fd, 1 << 20)
        var storage = sockaddr_storage()
        let len = address.write(to: &storage)
        let rc = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, len) }
        }
        if rc != 0 { let e = lastError("connect"); _ = CLiburing.close(fd); throw e }
        return fd
    }

    /// A TCP socket for an upstream connection, with TCP_NODELAY.
    ///
    /// Non-blocking, like accepted sockets: io_uring's recv, send and connect do not
    /// change with it (they still wait for readiness in the kernel's poll table), and
    /// the splice path's splice(2) calls return at once instead of blocking the worker.
    public static func stream(_ family: SocketAddress.Family) throws(SystemError) -> Int32 {
        let fd = socket(family == .ipv4 ? AF_INET : AF_INET6, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue), 0)
        if fd < 0 { throw lastError("socket") }
        setNoDelay(fd)
        return fd
    }

    /// SO_RCVBUF and SO_SNDBUF of `bytes`: the FORCE forms first (beyond the sysctl
    /// maximum, allowed with CAP_NET_ADMIN), else the plain ones (capped by the kernel).
    static func setBufferSizes(_ fd: Int32, _ bytes: Int32) {
        var size = bytes
        let length = socklen_t(MemoryLayout<Int32>.size)
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, length) != 0 { _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, length) }
        if setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, length) != 0 { _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, length) }
    }

    /// TCP_NODELAY: a forwarder must not add Nagle delay to small writes it relays.
    public static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// shutdown(SHUT_WR): sends FIN after what is queued. Returns the errno on failure
    /// (ENOTCONN when the peer is already gone), which callers treat as a closed side.
    @discardableResult
    public static func shutdownWrite(_ fd: Int32) -> Int32 {
        shutdown(fd, Int32(SHUT_WR)) == 0 ? 0 : Glibc.errno
    }

    /// shutdown(SHUT_RDWR): wakes anything blocked on `fd`.
    public static func shutdownBoth(_ fd: Int32) {
        _ = shutdown(fd, Int32(SHUT_RDWR))
    }

    /// close(2). EINTR is not retried: on Linux the fd is released regardless.
    public static func close(_ fd: Int32) {
        _ = CLiburing.close(fd)
    }

    /// Closes with SO_LINGER {on, 0}: the peer gets an RST, which is how a reset on one
    /// side of a relay is passed on to the other.
    public static func closeWithReset(_ fd: Int32) {
        var linger = CLiburing.linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<CLiburing.linger>.size))
        _ = CLiburing.close(fd)
    }

    /// getsockname(2): the local address the client connected to.
    public static func localAddress(_ fd: Int32) -> SocketAddress? {
        address(fd, getsockname)
    }

    /// getpeername(2): the client's address.
    public static func peerAddress(_ fd: Int32) -> SocketAddress? {
        address(fd, getpeername)
    }

    private static func address(_ fd: Int32, _ call: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32) -> SocketAddress? {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call(fd, $0, &len) }
        }
        guard rc == 0 else { return nil }
        return SocketAddress(reading: &storage)
    }
}

/// Pipes for the splice relay path.
public enum Pipes {
    /// A close-on-exec pipe resized to `size` bytes (F_SETPIPE_SZ): the default 64 KiB
    /// halves splice throughput. An unprivileged user may get less than asked
    /// (pipe-user-pages-soft); the pipe still works, only slower.
    public static func make(size: Int) throws(SystemError) -> (read: Int32, write: Int32) {
        var fds: (Int32, Int32) = (-1, -1)
        let rc = withUnsafeMutableBytes(of: &fds) { pu_pipe2($0.baseAddress!.assumingMemoryBound(to: Int32.self), O_CLOEXEC) }
        if rc != 0 { throw lastError("pipe2") }
        _ = pu_set_pipe_size(fds.1, Int32(size))
        return (fds.0, fds.1)
    }

    /// splice(2) from a socket into a pipe or from a pipe into a socket, without waiting:
    /// bytes moved (0: the socket's end of stream), or -errno (-EAGAIN: nothing to read
    /// or no room). EINTR is retried.
    ///
    /// A call from the worker's thread, not IORING_OP_SPLICE: that one always runs in an
    /// io-wq kernel thread, and handing each splice to that thread and its completion
    /// back cost more than the splice itself (README, "Relay paths"). The ring still
    /// does the waiting, with polls.
    @inline(__always)
    public static func splice(from source: Int32, to destination: Int32, length: Int) -> Int32 {
        while true {
            let n = pu_splice_nonblocking(source, destination, length)
            if n != -Int(EINTR) { return Int32(truncatingIfNeeded: n) }
        }
    }

    /// Bytes queued in the pipe (ioctl FIONREAD on either end), or nil if the call
    /// failed. One syscall: cheap enough to run each time a pipe goes back to a pool.
    public static func queuedBytes(_ fd: Int32) -> Int? {
        var queued: Int32 = 0
        return pu_queued_bytes(fd, &queued) == 0 ? Int(queued) : nil
    }
}

/// eventfd(2): how another thread wakes a ring that is waiting for completions.
public enum EventFD {
    public static func make() throws(SystemError) -> Int32 {
        let fd = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        if fd < 0 { throw lastError("eventfd") }
        return fd
    }

    /// Adds 1 to the counter (async-signal-safe).
    public static func signal(_ fd: Int32) {
        var one: UInt64 = 1
        while write(fd, &one, 8) < 0 && Glibc.errno == EINTR {}
    }

    /// Resets the counter to 0.
    public static func drain(_ fd: Int32) {
        var value: UInt64 = 0
        while read(fd, &value, 8) < 0 && Glibc.errno == EINTR {}
    }
}

/// Process-wide settings the forwarder needs before its workers start.
public enum ProcessSetup {
    /// Raises the soft open-file limit to the hard one; returns the new soft limit.
    /// A forwarder holds two sockets per connection.
    @discardableResult
    public static func raiseOpenFileLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        return Int(min(limit.rlim_cur, rlim_t(Int32.max)))
    }

    /// The number of online CPUs (sysconf _SC_NPROCESSORS_ONLN).
    public static var onlineCPUs: Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

    /// splice(2) cannot take MSG_NOSIGNAL: a write to a closed peer must be an EPIPE
    /// result, not a process-killing SIGPIPE.
    public static func ignoreSIGPIPE() {
        signal(SIGPIPE, SIG_IGN)
    }

    /// What the io_uring probe found missing.
    public enum IOUringProbeFailure: Error {
        /// io_uring cannot be used at all (disabled by sysctl or seccomp, or absent).
        case unavailable(SystemError)
        /// io_uring works, but not with a feature every worker's ring needs.
        case missingFeature(String, SystemError)
    }

    /// Checks that this kernel and process may use io_uring with the very flags the
    /// workers' rings use, so start-up fails with one clear line naming what is missing
    /// instead of inside a worker.
    public static func probeIOUring() throws(IOUringProbeFailure) {
        do {
            _ = try Ring(RingOptions(entries: 2, singleIssuer: true))
        } catch {
            // Without the flags: does io_uring work at all?
            do { _ = try Ring(RingOptions(entries: 2, singleIssuer: false)) } catch { throw .unavailable(error) }
            throw .missingFeature("IORING_SETUP_SINGLE_ISSUER and IORING_SETUP_DEFER_TASKRUN (Linux 6.1 or newer)", error)
        }
    }
}

/// The controlling terminal, for the stats dashboard (its ioctl is variadic in C).
public enum Terminal {
    /// Rows and columns of the terminal on `fd`; nil when it is not a terminal.
    public static func size(_ fd: Int32) -> (rows: Int, columns: Int)? {
        var rows: UInt16 = 0, columns: UInt16 = 0
        guard pu_window_size(fd, &rows, &columns) == 0, rows > 0, columns > 0 else { return nil }
        return (Int(rows), Int(columns))
    }
}
