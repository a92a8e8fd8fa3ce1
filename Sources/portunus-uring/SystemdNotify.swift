import Glibc
import Logging

/// The service manager's readiness protocol, sd_notify(3), written by hand: one
/// `AF_UNIX`/`SOCK_DGRAM` datagram of `KEY=VALUE\n` lines sent to the socket named by
/// `$NOTIFY_SOCKET`, a filesystem path (`/run/systemd/notify`) or, when it starts with
/// `@`, a name in the abstract namespace. That is the whole protocol; linking libsystemd
/// for it would add a shared library (and its own dependencies) to the release build that
/// otherwise needs only liburing and c-ares (README, "A build that runs without the Swift
/// toolchain").
///
/// Without `$NOTIFY_SOCKET` (or with it empty) every call does nothing: the forwarder was
/// not started by a service manager that listens. A message that cannot be sent (a value
/// that is neither an absolute path nor `@name`, such as systemd ≥ 254's `vsock:`; no
/// socket there; a full queue) is logged once, at debug (`standalone.notify_failed`),
/// and never stops the forwarder: forwarding matters more than telling about it.
///
/// Used from the main thread only (the signal loop), so it holds no lock.
final class SystemdNotify {
    /// Where the messages go, decided once from the environment.
    private enum Destination {
        /// `$NOTIFY_SOCKET` unset or empty: nothing to tell.
        case none
        /// `$NOTIFY_SOCKET` set to something this code cannot send to; the reason.
        case unusable(String)
        /// A socket address and its length (for an abstract name, exactly the name's
        /// bytes: trailing NULs would be part of the name).
        case socket(sockaddr_un, socklen_t)
    }

    private let destination: Destination
    /// `$NOTIFY_SOCKET` as read, for the log line.
    private let socketName: String
    private let logger: Logger
    private var failureLogged = false

    /// Reads `$NOTIFY_SOCKET` once.
    init(logger: Logger) {
        self.logger = logger
        let value = getenv("NOTIFY_SOCKET").map { String(cString: $0) }
        socketName = value ?? ""
        destination = Self.destination(value)
    }

    /// `READY=1`: every listener is bound, every worker's ring is up and the stats socket
    /// (when enabled) is served. After a reload, the reload is over.
    func ready(status: String? = nil) {
        send(["READY=1"] + Self.statusLine(status))
    }

    /// `RELOADING=1` with `MONOTONIC_USEC=` (CLOCK_MONOTONIC in µs), as systemd ≥ 253
    /// wants for `Type=notify-reload` (it ignores a `RELOADING=1` without a timestamp
    /// newer than the reload request); older versions ignore the extra line.
    /// Must be followed by `ready()` when the reload is over, failed or not.
    func reloading(status: String? = nil) {
        send(["RELOADING=1", "MONOTONIC_USEC=\(Self.monotonicMicroseconds())"] + Self.statusLine(status))
    }

    /// `STOPPING=1`: a stop signal arrived and the drain begins.
    func stopping(status: String? = nil) {
        send(["STOPPING=1"] + Self.statusLine(status))
    }

    /// `STATUS=`: one free-form line shown by `systemctl status`.
    func status(_ text: String) {
        send(Self.statusLine(text))
    }

    /// A line break in the text would start a new `KEY=VALUE` line: replaced by a space.
    private static func statusLine(_ text: String?) -> [String] {
        guard let text else { return [] }
        return ["STATUS=" + String(text.map { $0.isNewline ? " " : $0 })]
    }

    static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
    }

    private static func destination(_ value: String?) -> Destination {
        guard let value, !value.isEmpty else { return .none }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
        var bytes = Array(value.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        guard abstract || bytes.first == UInt8(ascii: "/") else {
            return .unusable("NOTIFY_SOCKET=\"\(value)\" is neither an absolute path nor an abstract name (@NAME)")
        }
        // An abstract name is a NUL then the name, and its length is exactly that; a path
        // needs room for its terminating NUL. (An environment value holds no NUL.)
        if abstract { bytes[0] = 0 }
        guard bytes.count + (abstract ? 0 : 1) <= capacity else {
            return .unusable("NOTIFY_SOCKET=\"\(value)\" is too long for a Unix socket address (\(capacity) bytes with the terminating or leading NUL)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
        }
        let length = pathOffset + bytes.count + (abstract ? 0 : 1)
        return .socket(address, socklen_t(length))
    }

    private func send(_ lines: [String]) {
        switch destination {
        case .none:
            return
        case let .unusable(reason):
            failedOnce(reason)
        case let .socket(address, length):
            if let error = Self.send(lines.map { $0 + "\n" }.joined(), to: address, length) { failedOnce(error) }
        }
    }

    /// One datagram; nil when it was sent whole, else what failed (call and errno).
    private static func send(_ message: String, to address: sockaddr_un, _ length: socklen_t) -> String? {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return "socket: \(describe(errno))" }
        defer { close(fd) }
        // A blocking send, as sd_notify's, but bounded: a manager that stopped reading
        // its queue must not hold up the signal loop (and with it the drain) for long.
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = address
        let bytes = Array(message.utf8)
        while true {
            let sent = bytes.withUnsafeBytes { buffer in
                withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL), $0, length)
                    }
                }
            }
            if sent == bytes.count { return nil }
            if sent >= 0 { return "sendto: \(sent) of \(bytes.count) bytes sent" }
            if errno == EINTR { continue }
            return "sendto: \(describe(errno))"
        }
    }

    private static func describe(_ code: Int32) -> String {
        "\(String(cString: strerror(code))) (errno \(code))"
    }

    private func failedOnce(_ reason: String) {
        guard !failureLogged else { return }
        failureLogged = true
        logger.debug("could not notify the service manager (logged once; later messages are still sent)", metadata: [
            "event": "standalone.notify_failed", "error": "\(reason)", "notify_socket": "\(socketName)",
        ])
    }
}
