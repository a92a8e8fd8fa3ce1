import PortunusRing

/// Everything a worker asks of the kernel, behind one narrow seam: submissions to its
/// ring, the completions they produce, the provided buffer ring, and the few
/// synchronous socket and pipe calls. Production runs ``KernelIO`` (io_uring and real
/// syscalls); the simulator (`PortunusSimulator`, `portunus-sim`) runs a seeded model
/// of the kernel that injects faults. The worker is generic over it and specialised for
/// `KernelIO` inside this module, so the seam costs no call and no allocation.
///
/// The contract a conforming type keeps is the kernel's: every prepared operation
/// produces exactly one completion (a multishot accept: one per connection while
/// `hasMore`), carrying its `userData`; pointers handed over (timeouts, pinned bytes,
/// buffers) are read until that completion; a linked chain's later members start
/// only after the earlier ones succeed.
@_spi(Simulation) public protocol WorkerIO: AnyObject {
    associatedtype Buffers: RelayBuffers
    /// The provided buffer ring that recvs pick from.
    var buffers: Buffers { get }

    /// Makes room for `count` operations that must be submitted together (a linked chain).
    func reserve(_ count: Int)
    func prepareMultishotAccept(fd: Int32, userData: UserData)
    func prepareConnect(fd: Int32, to table: SocketAddressTable, index: Int, userData: UserData, options: SQEOptions)
    func prepareLinkTimeout(_ timeout: PinnedTimeout, userData: UserData)
    func prepareTimeout(_ timeout: PinnedTimeout, userData: UserData)
    /// A recv into a buffer of ``buffers`` picked when data arrives.
    func prepareRecv(fd: Int32, pollFirst: Bool, userData: UserData)
    /// A recv into pinned bytes (an inbound PROXY header); `peek`: MSG_PEEK.
    func prepareRecv(fd: Int32, into bytes: PinnedBytes, offset: Int, length: Int, peek: Bool, userData: UserData)
    /// A send from provided buffer `bufferID`.
    func prepareSend(fd: Int32, bufferID: UInt16, offset: Int, length: Int, userData: UserData, dontWait: Bool)
    /// A send from pinned bytes (a PROXY header, a spilled tail).
    func prepareSend(fd: Int32, from bytes: PinnedBytes, offset: Int, length: Int, userData: UserData, dontWait: Bool, options: SQEOptions)
    /// splice(2) between a socket and a pipe now, from the worker's thread, never waiting: bytes moved or -errno.
    func spliceNow(from source: Int32, to destination: Int32, length: Int) -> Int32
    func preparePoll(fd: Int32, events: PollEvents, userData: UserData, options: SQEOptions)
    func prepareCancelAll(fd: Int32, userData: UserData)
    func prepareCancel(_ target: UserData, userData: UserData)
    /// Submits what is prepared and waits for at least `minimum` completions.
    func submitAndWait(_ minimum: UInt32)
    /// Hands every ready completion to `body`, in order.
    func reapCompletions(_ body: (Completion) -> Void)

    /// A non-blocking TCP socket for an upstream connection.
    func openStream(_ family: SocketAddress.Family) throws(SystemError) -> Int32
    func close(_ fd: Int32)
    /// Close with SO_LINGER 0: the peer gets an RST.
    func closeWithReset(_ fd: Int32)
    func shutdownWrite(_ fd: Int32)
    func peerAddress(_ fd: Int32) -> SocketAddress?
    func localAddress(_ fd: Int32) -> SocketAddress?
    func makePipe(size: Int) throws(SystemError) -> (read: Int32, write: Int32)
    /// Whether urgent (MSG_OOB) data is next in a TCP socket's stream (sockatmark(3)).
    func atUrgentMark(_ fd: Int32) -> Bool
    /// Bytes queued in a pipe (FIONREAD), nil if it cannot be asked.
    func queuedBytes(inPipe fd: Int32) -> Int?
    /// Empties the worker's wake-up eventfd.
    func drainWakeup(_ fd: Int32)
    /// A coarse monotonic clock, in milliseconds.
    func nowMs() -> Int64

    // UDP (SPEC.md §7): datagrams go through a buffer ring of their own, one datagram
    // per buffer. The simulator models TCP only and never plans a UDP rule.

    /// A multishot recvmsg on a UDP socket: one completion per datagram.
    func prepareDatagramRecv(fd: Int32, userData: UserData)
    /// The datagram in datagram buffer `bufferID`, filled by a completion of `result` bytes.
    func datagram(in bufferID: UInt16, completionResult: Int32) -> ReceivedDatagram?
    /// Sends part of datagram buffer `bufferID` as one datagram: on a connected socket
    /// (`to` nil), or to `to` through an unconnected one, from local address `source`
    /// when given.
    func prepareDatagramSend(fd: Int32, to: SocketAddress?, source: SocketAddress?, bufferID: UInt16, offset: Int, length: Int, userData: UserData)
    func takeDatagramBuffer(_ bufferID: UInt16)
    func recycleDatagramBuffer(_ bufferID: UInt16)
    /// Whether some datagram buffer is free now (a recv armed now would get one).
    var datagramBufferFree: Bool { get }
    /// A non-blocking UDP socket connected to `address`.
    func openDatagram(to address: SocketAddress) throws(SystemError) -> Int32
}

extension WorkerIO {
    public func prepareDatagramRecv(fd: Int32, userData: UserData) { preconditionFailure("UDP is not simulated") }
    public func datagram(in bufferID: UInt16, completionResult: Int32) -> ReceivedDatagram? { preconditionFailure("UDP is not simulated") }
    public func prepareDatagramSend(fd: Int32, to: SocketAddress?, source: SocketAddress?, bufferID: UInt16, offset: Int, length: Int, userData: UserData) {
        preconditionFailure("UDP is not simulated")
    }
    public func takeDatagramBuffer(_ bufferID: UInt16) { preconditionFailure("UDP is not simulated") }
    public func recycleDatagramBuffer(_ bufferID: UInt16) { preconditionFailure("UDP is not simulated") }
    public var datagramBufferFree: Bool { preconditionFailure("UDP is not simulated") }
    public func openDatagram(to address: SocketAddress) throws(SystemError) -> Int32 { preconditionFailure("UDP is not simulated") }
}

/// The provided buffer ring as the worker uses it: ownership is recorded on both
/// sides of every hand-over (``take(_:)`` when a completion hands a buffer over,
/// ``recycle(_:)`` when it goes back), so a buffer given back twice traps.
@_spi(Simulation) public protocol RelayBuffers: AnyObject {
    var count: Int { get }
    var bufferSize: Int { get }
    /// Buffers handed out and not given back.
    var heldCount: Int { get }
    func take(_ bufferID: UInt16)
    func recycle(_ bufferID: UInt16)
    /// A recv found no buffer in the kernel's ring (ENOBUFS).
    func ranDry()
    /// Buffers hold resident memory that neither the stock nor the buffers in use need.
    var hasIdleMemory: Bool { get }
    /// Gives that memory back to the kernel; returns how many buffers' worth.
    @discardableResult func releaseIdleMemory() -> Int
    /// Copies `length` bytes of buffer `bufferID` from `offset` into `bytes` at `destination`.
    func copy(_ bufferID: UInt16, offset: Int, length: Int, into bytes: PinnedBytes, at destination: Int)
}

extension WorkerIO {
    /// A poll that is not part of a chain.
    @inline(__always)
    func preparePoll(fd: Int32, events: PollEvents, userData: UserData) {
        preparePoll(fd: fd, events: events, userData: userData, options: [])
    }
}
