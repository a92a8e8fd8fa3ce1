import Glibc
import PortunusConfig

/// The endpoint's listening socket: the only code of this module that builds a
/// `sockaddr` (C types stay here and in the server's calls on the accepted socket).
enum MetricsSocket {
    /// A failed call, with its name and errno: "bind: Address already in use (errno 98)".
    struct Failure: Error, CustomStringConvertible {
        let call: String
        let errno: Int32

        init(_ call: String, errno: Int32 = Glibc.errno) {
            self.call = call
            self.errno = errno
        }

        var description: String { "\(call): \(String(cString: strerror(errno))) (errno \(errno))" }
    }

    /// A non-blocking TCP listener bound to exactly `address` (an IPv6 one to IPv6 only),
    /// `SO_REUSEADDR` so a restart is not refused while the last run's connections sit
    /// in TIME_WAIT.
    static func listen(_ address: ListenAddress) throws(Failure) -> Int32 {
        let family: Int32
        switch address.host {
        case .ipv4: family = AF_INET
        case .ipv6: family = AF_INET6
        }
        let fd = socket(family, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw Failure("socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound: Int32
        switch address.host {
        case let .ipv4(ip):
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = address.port.bigEndian
            sin.sin_addr.s_addr = ip.value.bigEndian
            bound = withUnsafePointer(to: &sin) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        case let .ipv6(ip):
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = address.port.bigEndian
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { $0.copyBytes(from: ip.octets) }
            bound = withUnsafePointer(to: &sin6) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
        guard bound == 0 else {
            let failure = Failure("bind")
            close(fd)
            throw failure
        }
        guard Glibc.listen(fd, 16) == 0 else {
            let failure = Failure("listen")
            close(fd)
            throw failure
        }
        return fd
    }
}
