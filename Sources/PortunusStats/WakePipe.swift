import Glibc

/// How a server thread that waits in `poll` (the stats socket's, the metrics
/// endpoint's) is told to end: a pipe whose read end it polls beside its sockets.
public struct WakePipe: Sendable {
    /// The end the server thread polls.
    public let readFD: Int32
    private let writeFD: Int32

    /// A close-on-exec pipe, or nil with errno set.
    public static func make() -> WakePipe? {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return nil }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return WakePipe(readFD: fds[0], writeFD: fds[1])
    }

    /// Wakes `thread`, waits for it to end, then closes both ends.
    public func stop(_ thread: pthread_t) {
        var one: UInt8 = 1
        _ = write(writeFD, &one, 1)
        pthread_join(thread, nil)
        close(readFD)
        close(writeFD)
    }
}
