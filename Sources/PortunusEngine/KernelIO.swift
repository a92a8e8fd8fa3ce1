import Glibc
import PortunusRing

/// The worker's seam to the real kernel: its io_uring, its provided buffer ring and the
/// synchronous calls, each a direct forward (inlined into the specialised worker).
final class KernelIO: WorkerIO {
    let ring: Ring
    let buffers: ProvidedBufferRing
    /// UDP's buffer ring (group 2), with the layout its recvmsgs use and one send
    /// header per buffer; nil without UDP rules.
    let datagrams: ProvidedBufferRing?
    let datagramLayout = DatagramLayout()
    let datagramHeaders: DatagramSendHeaders

    /// Creates the ring and its buffer ring. Must run on the worker's own thread
    /// (SINGLE_ISSUER: the creating thread is the only one that may submit).
    init(settings: EngineSettings, logger: (String, SystemError) -> Void) throws(SystemError) {
        // splice(2) into a closed peer raises SIGPIPE on the calling thread (it takes no
        // MSG_NOSIGNAL), and the worker's thread is the caller.
        ProcessSetup.ignoreSIGPIPE()
        ring = try Ring(RingOptions(entries: settings.ringEntries))
        // Nothing the engine submits needs an io-wq thread (splices are calls of the
        // worker's own, ``spliceNow``), but the kernel may still hand an operation it
        // cannot complete without blocking to one: the cap bounds how many it may start.
        do {
            try ring.limitWorkerThreads(bounded: UInt32(settings.ioWorkersPerRing), unbounded: UInt32(settings.ioWorkersPerRing))
        } catch {
            logger("cannot cap io_uring worker threads; the kernel may start more", error)
        }
        buffers = try ProvidedBufferRing(ring: ring, groupID: 1, count: settings.bufferCount, bufferSize: settings.bufferSize,
                                         stock: settings.bufferStock)
        datagrams = settings.datagramBufferCount == 0 ? nil
            : try ProvidedBufferRing(ring: ring, groupID: 2, count: settings.datagramBufferCount, bufferSize: settings.datagramBufferSize)
        datagramHeaders = DatagramSendHeaders(count: settings.datagramBufferCount)
    }

    @inline(__always) func prepareDatagramRecv(fd: Int32, userData: UserData) {
        ring.prepareMultishotRecvMsg(fd: fd, layout: datagramLayout, from: datagrams!, userData: userData)
    }
    @inline(__always) func datagram(in bufferID: UInt16, completionResult: Int32) -> ReceivedDatagram? {
        datagrams!.datagram(in: bufferID, completionResult: completionResult, layout: datagramLayout)
    }
    @inline(__always) func prepareDatagramSend(fd: Int32, to: SocketAddress?, source: SocketAddress?, bufferID: UInt16, offset: Int, length: Int,
                                               userData: UserData) {
        if let to {
            ring.prepareSendDatagram(fd: fd, to: to, source: source, from: datagrams!, bufferID: bufferID, offset: offset, length: length,
                                     headers: datagramHeaders, userData: userData)
        } else {
            ring.prepareSend(fd: fd, from: datagrams!, bufferID: bufferID, offset: offset, length: length, userData: userData, dontWait: true)
        }
    }
    @inline(__always) func takeDatagramBuffer(_ bufferID: UInt16) { datagrams!.take(bufferID) }
    @inline(__always) func recycleDatagramBuffer(_ bufferID: UInt16) { datagrams!.recycle(bufferID) }
    var datagramBufferFree: Bool { datagrams!.heldCount < datagrams!.count }
    @inline(__always) func openDatagram(to address: SocketAddress) throws(SystemError) -> Int32 { try Sockets.connectedDatagram(to: address) }

    @inline(__always) func reserve(_ count: Int) { ring.reserve(count) }
    @inline(__always) func prepareMultishotAccept(fd: Int32, userData: UserData) { ring.prepareMultishotAccept(fd: fd, userData: userData) }
    @inline(__always) func prepareConnect(fd: Int32, to table: SocketAddressTable, index: Int, userData: UserData, options: SQEOptions) {
        ring.prepareConnect(fd: fd, to: table, index: index, userData: userData, options: options)
    }
    @inline(__always) func prepareLinkTimeout(_ timeout: PinnedTimeout, userData: UserData) { ring.prepareLinkTimeout(timeout, userData: userData) }
    @inline(__always) func prepareTimeout(_ timeout: PinnedTimeout, userData: UserData) { ring.prepareTimeout(timeout, userData: userData) }
    @inline(__always) func prepareRecv(fd: Int32, pollFirst: Bool, userData: UserData) {
        ring.prepareRecv(fd: fd, from: buffers, pollFirst: pollFirst, userData: userData)
    }
    @inline(__always) func prepareRecv(fd: Int32, into bytes: PinnedBytes, offset: Int, length: Int, peek: Bool, userData: UserData) {
        ring.prepareRecv(fd: fd, into: bytes, offset: offset, length: length, peek: peek, userData: userData)
    }
    @inline(__always) func prepareSend(fd: Int32, bufferID: UInt16, offset: Int, length: Int, userData: UserData, dontWait: Bool) {
        ring.prepareSend(fd: fd, from: buffers, bufferID: bufferID, offset: offset, length: length, userData: userData, dontWait: dontWait)
    }
    @inline(__always) func prepareSend(fd: Int32, from bytes: PinnedBytes, offset: Int, length: Int, userData: UserData, dontWait: Bool, options: SQEOptions) {
        ring.prepareSend(fd: fd, from: bytes, offset: offset, length: length, userData: userData, dontWait: dontWait, options: options)
    }
    @inline(__always) func spliceNow(from source: Int32, to destination: Int32, length: Int) -> Int32 {
        Pipes.splice(from: source, to: destination, length: length)
    }
    @inline(__always) func preparePoll(fd: Int32, events: PollEvents, userData: UserData, options: SQEOptions) {
        ring.preparePoll(fd: fd, events: events, userData: userData, options: options)
    }
    @inline(__always) func prepareCancelAll(fd: Int32, userData: UserData) { ring.prepareCancelAll(fd: fd, userData: userData) }
    @inline(__always) func prepareCancel(_ target: UserData, userData: UserData) { ring.prepareCancel(target, userData: userData) }
    @inline(__always) func submitAndWait(_ minimum: UInt32) { ring.submitAndWait(minimum) }
    @inline(__always) func reapCompletions(_ body: (Completion) -> Void) { ring.reapCompletions(body) }

    @inline(__always) func openStream(_ family: SocketAddress.Family) throws(SystemError) -> Int32 { try Sockets.stream(family) }
    @inline(__always) func close(_ fd: Int32) { Sockets.close(fd) }
    @inline(__always) func closeWithReset(_ fd: Int32) { Sockets.closeWithReset(fd) }
    @inline(__always) func shutdownWrite(_ fd: Int32) { Sockets.shutdownWrite(fd) }
    @inline(__always) func peerAddress(_ fd: Int32) -> SocketAddress? { Sockets.peerAddress(fd) }
    @inline(__always) func localAddress(_ fd: Int32) -> SocketAddress? { Sockets.localAddress(fd) }
    @inline(__always) func makePipe(size: Int) throws(SystemError) -> (read: Int32, write: Int32) { try Pipes.make(size: size) }
    @inline(__always) func queuedBytes(inPipe fd: Int32) -> Int? { Pipes.queuedBytes(fd) }
    @inline(__always) func atUrgentMark(_ fd: Int32) -> Bool { Sockets.atUrgentMark(fd) }
    @inline(__always) func drainWakeup(_ fd: Int32) { EventFD.drain(fd) }

    /// Milliseconds on CLOCK_MONOTONIC_COARSE (a vDSO read, a few ns, ~4 ms resolution).
    @inline(__always) func nowMs() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}

@_spi(Simulation) extension ProvidedBufferRing: RelayBuffers {
    public func copy(_ bufferID: UInt16, offset: Int, length: Int, into bytes: PinnedBytes, at destination: Int) {
        bytes.copy(from: self, bufferID: bufferID, sourceOffset: offset, length: length, to: destination)
    }
}
