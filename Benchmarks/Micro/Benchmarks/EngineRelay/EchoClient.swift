import Glibc

/// One client connection per call: connect to 127.0.0.1:port, send the payload while
/// reading the echo as it comes (poll, so a payload larger than the socket buffers
/// cannot deadlock the two directions), half-close after the last byte, read until EOF
/// and check the echo byte for byte. Payload and receive buffer are allocated once, so
/// a round trip allocates nothing itself.
/// `prefixBytes`: bytes the echo returns ahead of the payload (a PROXY header the
/// forwarder sent the echo server first); their length is checked, not their content.
final class EchoClient {
    let payload: UnsafeMutableRawBufferPointer
    let prefixBytes: Int
    private let received: UnsafeMutableRawBufferPointer

    init(payloadBytes: Int, prefixBytes: Int = 0) {
        self.prefixBytes = prefixBytes
        payload = .allocate(byteCount: payloadBytes, alignment: 64)
        for index in 0..<payloadBytes { payload[index] = UInt8(truncatingIfNeeded: index &* 31 &+ 7) }
        // Room for one byte more than expected, so an over-long echo is noticed.
        received = .allocate(byteCount: prefixBytes + payloadBytes + 1, alignment: 64)
    }

    deinit {
        payload.deallocate()
        received.deallocate()
    }

    /// The whole exchange; false on any failure or when the echo differs. Returns only
    /// once the far end has closed, so the forwarder has released the connection.
    func roundTrip(port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = LoopbackSocket.address(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0, fcntl(fd, F_SETFL, O_NONBLOCK) == 0 else { return false }
        var sent = 0
        var total = 0
        while true {
            var events = Int16(POLLIN)
            if sent < payload.count { events |= Int16(POLLOUT) }
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let ready = poll(&entry, 1, 10_000)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { return false } // error, or 10 s without progress
            if sent < payload.count && entry.revents & Int16(POLLOUT) != 0 {
                let n = send(fd, payload.baseAddress! + sent, payload.count - sent, Int32(MSG_NOSIGNAL))
                if n > 0 {
                    sent += n
                    if sent == payload.count { shutdown(fd, Int32(SHUT_WR)) }
                } else if n < 0 && errno != EAGAIN && errno != EINTR {
                    return false
                }
            }
            if entry.revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                let n = recv(fd, received.baseAddress! + total, received.count - total, 0)
                if n > 0 {
                    total += n
                    if total == received.count { return false } // more than was sent
                } else if n == 0 {
                    break
                } else if errno != EAGAIN && errno != EINTR {
                    return false
                }
            }
        }
        return sent == payload.count && total == prefixBytes + payload.count
            && memcmp(received.baseAddress! + prefixBytes, payload.baseAddress!, payload.count) == 0
    }
}
