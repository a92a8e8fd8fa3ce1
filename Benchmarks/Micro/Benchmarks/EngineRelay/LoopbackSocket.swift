import Glibc

/// The few raw socket calls the client and the echo server share, on 127.0.0.1
/// only. Addresses live on the stack, so none of these touches the heap: the
/// measured path must not allocate on its own (the malloc interposer counts every
/// thread of the process, the engine's and ours alike).
enum LoopbackSocket {
    /// `127.0.0.1:port` as a sockaddr_in.
    static func address(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return address
    }

    /// A blocking listener on 127.0.0.1 at an ephemeral port; returns (fd, port).
    static func listen(backlog: Int32 = 128) -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        precondition(fd >= 0, "socket: errno \(errno)")
        var address = address(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        precondition(bound == 0, "bind 127.0.0.1:0: errno \(errno)")
        precondition(Glibc.listen(fd, backlog) == 0, "listen: errno \(errno)")
        return (fd, boundPort(fd))
    }

    /// A port for the engine's listener, free on every address of both families right
    /// now (the engine binds 0.0.0.0 and [::] itself).
    ///
    /// Drawn below the kernel's ephemeral range (32768-60999 by default) on purpose:
    /// the engine binds with SO_REUSEPORT, which lets any process of the same user
    /// share the port, and tests elsewhere on the machine take "free" ports from that
    /// range and also run engines; a shared port would split connections between two
    /// forwarders. A port taken by someone else later makes the engine's start-up fail
    /// with port_in_use, and the fixture retries with another.
    static func freeListenPort() -> UInt16 {
        for _ in 0..<100 {
            let port = UInt16.random(in: 20_000..<32_768)
            if isFree(port) { return port }
        }
        preconditionFailure("no free port in 20000-32767")
    }

    /// Whether [::]:port (dual-stack, so 0.0.0.0:port too) can be bound right now.
    private static func isFree(_ port: UInt16) -> Bool {
        let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        precondition(fd >= 0, "socket: errno \(errno)")
        defer { close(fd) }
        var address = sockaddr_in6()
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_port = port.bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        } == 0
    }

    private static func boundPort(_ fd: Int32) -> UInt16 {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        precondition(rc == 0, "getsockname: errno \(errno)")
        // sin_port and sin6_port sit at the same offset, right after the family.
        return withUnsafeBytes(of: &storage) { UInt16(bigEndian: $0.load(fromByteOffset: 2, as: UInt16.self)) }
    }

    /// Writes all of `bytes`; false when the peer is gone.
    static func sendAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let sent = send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if sent > 0 { offset += sent; continue }
            if sent < 0 && errno == EINTR { continue }
            return false
        }
        return true
    }
}
