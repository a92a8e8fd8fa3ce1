import Foundation
import PortunusSimulator
#if canImport(Glibc)
import Glibc
#endif

/// One end of a hostile stream, driven by a single thread with poll(2): it writes filler
/// and reads at the same time, and stops after a set number of bytes read or written so
/// that the caller can reset the connection mid-stream. One thread per socket, so the
/// fd is never closed while another thread may still use its number.
public enum StreamingPeer {
    /// How a pump ended.
    public struct Outcome: Sendable {
        public var sent = 0
        public var received = 0
        /// Read EOF, hit an error (reset by the peer) or reached a stop point.
        public var sawEOF = false
        public var sawError = false
        public var reachedStop = false
    }

    /// Writes up to `sendBytes` bytes of `fill` while reading (and discarding) what
    /// arrives, until `stopAfterReceived` / `stopAfterSent` is reached, the peer closes
    /// or resets, both directions are done, or `timeoutSecs` passes.
    /// With `shutdownWhenSent`, the write side is shut down once all bytes are sent.
    public static func pump(_ fd: Int32, sendBytes: Int, fill: UInt8, stopAfterReceived: Int? = nil,
                            stopAfterSent: Int? = nil, shutdownWhenSent: Bool = false, timeoutSecs: Double = 20) -> Outcome {
        var outcome = Outcome()
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        // Large writes and reads: a forwarder's recv then finds whole buffers queued, as
        // with a fast bulk sender, which is what moves a half to splice on the auto path.
        let chunk = [UInt8](repeating: fill, count: 1 << 20)
        var sink = [UInt8](repeating: 0, count: 1 << 20)
        let deadline = Date().addingTimeInterval(timeoutSecs)
        var writeDone = sendBytes == 0
        if writeDone && shutdownWhenSent { shutdown(fd, Int32(SHUT_WR)) }
        while Date() < deadline {
            if let stop = stopAfterReceived, outcome.received >= stop { outcome.reachedStop = true; break }
            if let stop = stopAfterSent, outcome.sent >= stop { outcome.reachedStop = true; break }
            if outcome.sawEOF && writeDone { break }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN) | (writeDone ? 0 : Int16(POLLOUT)), revents: 0)
            guard poll(&pfd, 1, 100) > 0 else { continue }
            if pfd.revents & Int16(POLLIN | POLLERR | POLLHUP) != 0 && !outcome.sawEOF {
                let n = sink.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n > 0 { outcome.received += n } else if n == 0 { outcome.sawEOF = true } else if errno != EAGAIN && errno != EINTR {
                    outcome.sawError = true; break
                }
            }
            if !writeDone && pfd.revents & Int16(POLLOUT) != 0 {
                var want = min(chunk.count, sendBytes - outcome.sent)
                if let stop = stopAfterSent { want = min(want, max(1, stop - outcome.sent)) }
                let n = chunk.withUnsafeBytes { send(fd, $0.baseAddress, want, Int32(MSG_NOSIGNAL)) }
                if n > 0 { outcome.sent += n } else if n < 0 && errno != EAGAIN && errno != EINTR {
                    outcome.sawError = true; break
                }
                if outcome.sent >= sendBytes {
                    writeDone = true
                    if shutdownWhenSent { shutdown(fd, Int32(SHUT_WR)) }
                }
            }
            if outcome.sawEOF && pfd.revents & Int16(POLLHUP) != 0 { break }
        }
        _ = fcntl(fd, F_SETFL, flags)
        return outcome
    }
}

extension TestSocket {
    /// Closes with SO_LINGER 0: the kernel drops unsent data and sends an RST, as a
    /// client that crashes or aborts does.
    public func resetClose() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close()
    }
}

/// Deterministic pseudo-random numbers for a test that must replay from its seed: the
/// simulator's generator (one implementation for the simulator and the tests).
public typealias SeededRandom = SimRandom

extension SimRandom {
    /// A number in `range`.
    public mutating func next(in range: ClosedRange<Int>) -> Int { int(range) }
}

/// What a process's pipes hold right now: for each distinct pipe among its fds, the
/// bytes queued in it (FIONREAD). Opening /proc/PID/fd/N of a pipe opens the same pipe
/// (as a FIFO), so this reads another process's pipes without consuming a byte.
public func queuedBytesInPipes(pid: Int32) -> [String: Int] {
    let dir = "/proc/\(pid)/fd"
    var result: [String: Int] = [:]
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(dir)/\(entry)"),
              target.hasPrefix("pipe:"), result[target] == nil else { continue }
        let fd = open("\(dir)/\(entry)", O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { continue }
        var queued: Int32 = 0
        if ioctl(fd, UInt(FIONREAD), &queued) == 0 { result[target] = Int(queued) }
        Glibc.close(fd)
    }
    return result
}

/// How many sockets a process holds (entries of /proc/PID/fd that are sockets).
public func socketCount(pid: Int32) -> Int {
    let dir = "/proc/\(pid)/fd"
    return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { entry in
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(dir)/\(entry)"))?.hasPrefix("socket:") ?? false
    }.count
}
