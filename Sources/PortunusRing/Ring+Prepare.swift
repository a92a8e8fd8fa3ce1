import CLiburing

/// SQE preparation. Each call takes one SQE from the choke point, fills it through
/// liburing's inline helper, and tags it with `userData`. Pointers the kernel reads
/// come only from pinned storage (``SocketAddressTable``, ``PinnedTimeout``,
/// ``ProvidedBufferRing``) that outlives the completion.
extension Ring {
    @inline(__always)
    private func finish(_ sqe: UnsafeMutablePointer<io_uring_sqe>, _ userData: UserData, _ options: SQEOptions, extraFlags: UInt32 = 0) {
        io_uring_sqe_set_data64(sqe, userData.rawValue)
        io_uring_sqe_set_flags(sqe, options.sqeFlags | extraFlags)
    }

    /// IORING_OP_NOP.
    public func prepareNop(userData: UserData, options: SQEOptions = []) {
        let sqe = nextSQE()
        io_uring_prep_nop(sqe)
        finish(sqe, userData, options)
    }

    /// Multishot accept: one SQE, one completion per accepted connection while
    /// `hasMore` is set. No address buffer: every completion would overwrite the same
    /// one, so peers are asked with getpeername when needed. Accepted sockets are
    /// non-blocking (see ``Sockets/stream(_:)`` for why) and close-on-exec.
    public func prepareMultishotAccept(fd: Int32, userData: UserData) {
        let sqe = nextSQE()
        io_uring_prep_multishot_accept(sqe, fd, nil, nil, Int32(SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue))
        finish(sqe, userData, [])
    }

    /// Connect `fd` to entry `index` of a pinned address table.
    public func prepareConnect(fd: Int32, to table: SocketAddressTable, index: Int, userData: UserData, options: SQEOptions = []) {
        let sqe = nextSQE()
        io_uring_prep_connect(sqe, fd, table.sockaddrPointer(index), table.length(index))
        finish(sqe, userData, options)
    }

    /// A link timeout for the SQE prepared just before it (which must carry `.link`).
    public func prepareLinkTimeout(_ timeout: PinnedTimeout, userData: UserData) {
        let sqe = nextSQE()
        io_uring_prep_link_timeout(sqe, timeout.pointer, 0)
        finish(sqe, userData, [])
    }

    /// A stand-alone relative timeout (completes with -ETIME).
    public func prepareTimeout(_ timeout: PinnedTimeout, userData: UserData) {
        let sqe = nextSQE()
        io_uring_prep_timeout(sqe, timeout.pointer, 0, 0)
        finish(sqe, userData, [])
    }

    /// Recv into a buffer the kernel picks from `buffers` when data arrives, so an idle
    /// connection holds no buffer (IOSQE_BUFFER_SELECT). `pollFirst`
    /// (IORING_RECVSEND_POLL_FIRST) skips the first, doomed attempt when the caller
    /// knows no data can be there yet (e.g. right after relaying a request).
    public func prepareRecv(fd: Int32, from buffers: ProvidedBufferRing, pollFirst: Bool = false, userData: UserData) {
        let sqe = nextSQE()
        io_uring_prep_recv(sqe, fd, nil, buffers.bufferSize, 0)
        sqe.pointee.buf_group = buffers.groupID
        if pollFirst { sqe.pointee.ioprio |= UInt16(PU_IORING_RECVSEND_POLL_FIRST) }
        finish(sqe, userData, [], extraFlags: PU_IOSQE_BUFFER_SELECT)
    }

    /// Receive at most `length` bytes into caller-owned pinned bytes at `offset`, valid
    /// until completion: how the engine reads an inbound PROXY header. `peek`
    /// (MSG_PEEK): the bytes stay queued on the socket.
    public func prepareRecv(fd: Int32, into bytes: PinnedBytes, offset: Int, length: Int, peek: Bool, userData: UserData) {
        precondition(offset + length <= bytes.capacity)
        let sqe = nextSQE()
        io_uring_prep_recv(sqe, fd, bytes.base + offset, length, peek ? Int32(MSG_PEEK) : 0)
        finish(sqe, userData, [])
    }

    /// Send `length` bytes from provided buffer `bufferID` starting at `offset`.
    /// MSG_NOSIGNAL: a closed peer is an EPIPE result, never a SIGPIPE.
    /// `dontWait` (MSG_DONTWAIT): a destination that cannot take a byte now completes the
    /// send at once with -EAGAIN (and one with room for part, with a short count) instead
    /// of the kernel parking the request, and the buffer with it, until the peer reads.
    public func prepareSend(fd: Int32, from buffers: ProvidedBufferRing, bufferID: UInt16, offset: Int, length: Int, userData: UserData,
                            dontWait: Bool = false, options: SQEOptions = []) {
        let sqe = nextSQE()
        io_uring_prep_send(sqe, fd, buffers.address(of: bufferID) + offset, length, Self.sendFlags(dontWait))
        finish(sqe, userData, options)
    }

    /// Send from caller-owned pinned bytes (a PROXY prelude, a stalled send's tail),
    /// valid until completion. `dontWait` as above.
    public func prepareSend(fd: Int32, from bytes: PinnedBytes, offset: Int, length: Int, userData: UserData,
                            dontWait: Bool = false, options: SQEOptions = []) {
        precondition(offset + length <= bytes.capacity)
        let sqe = nextSQE()
        io_uring_prep_send(sqe, fd, bytes.base + offset, length, Self.sendFlags(dontWait))
        finish(sqe, userData, options)
    }

    @inline(__always)
    private static func sendFlags(_ dontWait: Bool) -> Int32 {
        Int32(MSG_NOSIGNAL) | (dontWait ? Int32(MSG_DONTWAIT) : 0)
    }

    /// One-shot poll: how the splice path waits for data or room (the splice itself is
    /// a non-blocking splice(2) call, ``Pipes/splice(from:to:length:)``).
    public func preparePoll(fd: Int32, events: PollEvents, userData: UserData, options: SQEOptions = []) {
        let sqe = nextSQE()
        io_uring_prep_poll_add(sqe, fd, events.rawValue)
        finish(sqe, userData, options)
    }

    /// Cancels every in-flight request on `fd` (IORING_ASYNC_CANCEL_FD | ALL). The
    /// result is the number cancelled, or -ENOENT when none was found.
    public func prepareCancelAll(fd: Int32, userData: UserData) {
        let sqe = nextSQE()
        io_uring_prep_cancel_fd(sqe, fd, PU_IORING_ASYNC_CANCEL_ALL)
        finish(sqe, userData, [])
    }

    /// Cancels the request tagged `target`.
    public func prepareCancel(_ target: UserData, userData: UserData, options: SQEOptions = []) {
        let sqe = nextSQE()
        io_uring_prep_cancel64(sqe, target.rawValue, 0)
        finish(sqe, userData, options)
    }
}

/// poll(2) event masks.
public struct PollEvents: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let readable = PollEvents(rawValue: UInt32(POLLIN))
    public static let writable = PollEvents(rawValue: UInt32(POLLOUT))
}
