import Glibc

/// A blocking echo server on 127.0.0.1 with one pre-spawned thread that serves
/// connections one after the other: every byte read is written back, and on EOF the
/// socket is closed. Its buffer is allocated once, so serving a connection costs
/// syscalls and no allocation.
final class EchoServer: @unchecked Sendable {
    // @unchecked: `listenFD` and `buffer` are set in init and then used only by the
    // server thread; `stop()` only shuts the listener down, which the kernel allows
    // from any thread, and joins.
    let port: UInt16
    private let listenFD: Int32
    private let buffer: UnsafeMutableRawBufferPointer
    private var thread = pthread_t()

    init(bufferBytes: Int = 64 * 1024) {
        (listenFD, port) = LoopbackSocket.listen()
        buffer = .allocate(byteCount: bufferBytes, alignment: 64)
        let context = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&thread, nil, { raw in
            let server = Unmanaged<EchoServer>.fromOpaque(raw!).takeRetainedValue()
            server.serve()
            return nil
        }, context)
        precondition(rc == 0, "pthread_create: \(rc)")
    }

    deinit { buffer.deallocate() }

    /// Wakes the blocked accept (shutdown makes it fail with EINVAL) and waits for
    /// the thread. A connection being served is finished first.
    func stop() {
        shutdown(listenFD, Int32(SHUT_RDWR))
        pthread_join(thread, nil)
        close(listenFD)
    }

    private func serve() {
        while true {
            let fd = accept(listenFD, nil, nil)
            if fd < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return
            }
            echo(fd)
            close(fd)
        }
    }

    private func echo(_ fd: Int32) {
        while true {
            let received = recv(fd, buffer.baseAddress, buffer.count, 0)
            if received < 0 && errno == EINTR { continue }
            guard received > 0 else { return }
            guard LoopbackSocket.sendAll(fd, UnsafeRawBufferPointer(rebasing: buffer[..<received])) else { return }
        }
    }
}
