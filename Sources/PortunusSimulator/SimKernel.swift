import Glibc
@_spi(Simulation) import PortunusEngine
import PortunusRing

/// One endpoint of a simulated TCP connection.
final class SimSocket {
    let serial: Int
    /// The other endpoint (nil until connected; kept after close so late sends fail right).
    var peer: SimSocket?
    /// Bytes the peer sent to this endpoint and nobody has read yet.
    var inbound = ByteQueue()
    /// Receive buffer: what the peer can send before this endpoint reads.
    let capacity: Int
    var peerShutWrite = false
    var wasReset = false
    var closed = false
    var shutWrite = false
    /// Urgent (MSG_OOB) data is next in the stream: a splice moves nothing (and, once
    /// the peer has shut its side, says 0 as at the end) until a recv steps past it.
    var atUrgentMark = false
    let address: SocketAddress
    let local: SocketAddress
    /// Which app owns it (nil: the worker). The world keeps every app alive for the
    /// run, so the reference needs no counting.
    unowned(unsafe) var app: SimApp?

    init(serial: Int, capacity: Int, address: SocketAddress, local: SocketAddress) {
        self.serial = serial
        self.capacity = capacity
        self.address = address
        self.local = local
    }

    /// Bytes this endpoint can still send to its peer now.
    var sendRoom: Int {
        guard let peer, !peer.closed else { return 0 }
        return max(0, peer.capacity - peer.inbound.count)
    }

    var readable: Bool { !inbound.isEmpty || peerShutWrite || wasReset }
    var writable: Bool { wasReset || peer == nil || peer!.closed || sendRoom > 0 }

    /// An RST from the peer: unread bytes are gone, every later call fails.
    func receiveReset() {
        wasReset = true
        inbound.removeAll()
    }
}

final class SimPipe {
    var bytes = ByteQueue()
    let capacity: Int
    var readClosed = false
    var writeClosed = false
    init(capacity: Int) { self.capacity = capacity }
}

final class SimListener {
    let port: UInt16
    /// Worker-side endpoints of connections the kernel completed and nobody accepted yet.
    var backlog: [SimSocket] = []
    var closed = false
    init(port: UInt16) { self.port = port }
}

enum SimFile {
    case socket(SimSocket)
    case listener(SimListener)
    case pipeRead(SimPipe)
    case pipeWrite(SimPipe)
    case wake
}

/// An operation submitted to the simulated ring.
enum SimOp {
    case accept(fd: Int32)
    case connect(fd: Int32, endpoint: Int)
    case linkTimeout(ms: Int)
    case timeout(ms: Int)
    case recv(fd: Int32)
    /// A recv into pinned bytes (an inbound PROXY header); `peek`: MSG_PEEK.
    case recvBytes(fd: Int32, bytes: PinnedBytes, offset: Int, length: Int, peek: Bool)
    case sendBuffer(fd: Int32, bufferID: UInt16, offset: Int, length: Int, dontWait: Bool)
    case sendBytes(fd: Int32, bytes: PinnedBytes, offset: Int, length: Int, dontWait: Bool)
    case poll(fd: Int32, events: PollEvents)
    case cancelAll(fd: Int32)
    case cancel(target: UserData)

    /// The fd a cancel-by-fd matches: the op's file (as io_uring's `req->file`).
    var file: Int32? {
        switch self {
        case let .accept(fd), let .connect(fd, _), let .recv(fd), let .poll(fd, _), let .recvBytes(fd, _, _, _, _): fd
        case let .sendBuffer(fd, _, _, _, _), let .sendBytes(fd, _, _, _, _): fd
        default: nil
        }
    }

    /// Every fd the op names.
    var fds: [Int32] {
        file.map { [$0] } ?? []
    }
}

final class SimPending {
    let userData: UserData
    let op: SimOp
    /// IOSQE_IO_LINK: `next` starts only when this one succeeds.
    var linked = false
    var next: SimPending?
    /// Waiting for the previous member of its chain.
    var blocked = false
    /// A link timeout guarding this op, or the op a link timeout guards. Weak one way,
    /// or each pair would keep the other alive after both completed (a leak of every
    /// linked chain: 38 KB a seed, which a million seeds turn into an OOM kill). The
    /// guarded op stays in `pending` for as long as its timeout can fire.
    var guardTimeout: SimPending?
    weak var guarded: SimPending?
    /// When a timer fires, or when an op handed to an io-wq thread runs.
    var due: Int64 = .max
    /// Connect outcome decided when it starts.
    var connectOutcome: ConnectOutcome = .accept
    var done = false

    init(_ userData: UserData, _ op: SimOp) {
        self.userData = userData
        self.op = op
    }
}

enum ConnectOutcome { case accept, refuse, blackhole }

/// The provided buffer ring of the simulated kernel. Ownership is tracked on the
/// kernel's side too: a buffer the worker gives back while the kernel holds it, or a
/// send from a buffer the worker does not hold, is a failure.
final class SimBuffers: RelayBuffers {
    let count: Int
    let bufferSize: Int
    private(set) var heldCount = 0
    /// Per buffer: true while the worker holds it (the kernel handed it over).
    private(set) var heldByWorker: [Bool]
    /// Buffers in the kernel's ring, in the order it will pick them.
    var ring: [UInt16]
    /// All buffers' bytes, buffer `b` at `b * bufferSize`.
    var memory: [UInt8]
    // unowned(unsafe): the world owns the kernel and outlives it; no refcounting per call.
    unowned(unsafe) let world: SimWorld

    init(count: Int, bufferSize: Int, world: SimWorld) {
        self.count = count
        self.bufferSize = bufferSize
        self.world = world
        heldByWorker = [Bool](repeating: false, count: count)
        ring = (0..<count).map { UInt16($0) }
        memory = [UInt8](repeating: 0, count: count * bufferSize)
    }

    /// The kernel picks a buffer for a recv.
    func pick() -> UInt16? {
        guard !ring.isEmpty else { return nil }
        let bid = ring.removeFirst()
        heldByWorker[Int(bid)] = true
        return bid
    }

    func take(_ bufferID: UInt16) {
        // The worker records the hand-over; the kernel side already marked it.
        if !heldByWorker[Int(bufferID)] { world.fail("the worker took buffer \(bufferID), which the kernel never handed out") }
        heldCount += 1
    }

    func recycle(_ bufferID: UInt16) {
        guard heldByWorker[Int(bufferID)] else {
            world.fail("buffer \(bufferID) given back while the kernel already holds it")
            return
        }
        heldByWorker[Int(bufferID)] = false
        heldCount -= 1
        ring.append(bufferID)
        // A buffer back in the ring may be overwritten at any time: scribble on it so
        // that a send still reading it would carry garbage the checks see.
        let start = Int(bufferID) * bufferSize
        memory.withUnsafeMutableBufferPointer { ($0.baseAddress! + start).update(repeating: 0xCC, count: bufferSize) }
    }

    /// The simulated ring is always stocked with every buffer it does not hand out,
    /// and its memory is an array: there is nothing to give back.
    func ranDry() {}
    var hasIdleMemory: Bool { false }
    func releaseIdleMemory() -> Int { 0 }

    func copy(_ bufferID: UInt16, offset: Int, length: Int, into bytes: PinnedBytes, at destination: Int) {
        if !heldByWorker[Int(bufferID)] { world.fail("copy from buffer \(bufferID), which the worker does not hold") }
        let start = Int(bufferID) * bufferSize + offset
        bytes.store(memory[start..<(start + length)], at: destination)
    }
}

/// The seeded model of the kernel behind the worker's seam: fds, sockets, pipes,
/// listeners, a provided buffer ring, a clock, and a ring whose operations complete
/// when the modelled state allows, with faults injected at random.
final class SimKernel: WorkerIO {
    unowned(unsafe) let world: SimWorld
    let buffers: SimBuffers
    /// The fd table (index = fd): an array, not a dictionary, as every attempt looks it up.
    var files = FDTable<SimFile>()
    /// Operations that name each fd and have not completed.
    var opsOnFD = FDTable<Int>()
    private var lowestFree: Int32 = 10
    var prepared: [SimPending] = []
    var pending: [SimPending] = []
    var ready: [Completion] = []
    var wakeSignalled = false
    var nextSerial = 0

    init(world: SimWorld, bufferCount: Int, bufferSize: Int) {
        self.world = world
        buffers = SimBuffers(count: bufferCount, bufferSize: bufferSize, world: world)
    }

    // MARK: fds

    func allocate(_ file: SimFile) -> Int32 {
        var fd = lowestFree
        while files[fd] != nil { fd += 1 }
        files[fd] = file
        lowestFree = fd + 1
        return fd
    }

    private func release(_ fd: Int32) {
        files[fd] = nil
        lowestFree = min(lowestFree, fd)
    }

    func makeSocket(capacity: Int, address: SocketAddress, local: SocketAddress) -> SimSocket {
        nextSerial += 1
        return SimSocket(serial: nextSerial, capacity: capacity, address: address, local: local)
    }

    // MARK: submissions

    private func add(_ userData: UserData, _ op: SimOp, _ options: SQEOptions = []) {
        let p = SimPending(userData, op)
        p.linked = options.contains(.link)
        if let previous = prepared.last, previous.linked {
            if case .linkTimeout = op {
                previous.guardTimeout = p
                p.guarded = previous
            } else {
                previous.next = p
                p.blocked = true
            }
        }
        for fd in op.fds {
            if files[fd] == nil { world.fail("an operation names fd \(fd), which is not open (\(op))") }
            opsOnFD[fd] = (opsOnFD[fd] ?? 0) + 1
        }
        prepared.append(p)
    }

    func reserve(_ count: Int) {}
    func prepareMultishotAccept(fd: Int32, userData: UserData) { add(userData, .accept(fd: fd)) }
    func prepareConnect(fd: Int32, to table: SocketAddressTable, index: Int, userData: UserData, options: SQEOptions) {
        add(userData, .connect(fd: fd, endpoint: index), options)
    }
    func prepareLinkTimeout(_ timeout: PinnedTimeout, userData: UserData) { add(userData, .linkTimeout(ms: timeout.milliseconds)) }
    func prepareTimeout(_ timeout: PinnedTimeout, userData: UserData) { add(userData, .timeout(ms: timeout.milliseconds)) }
    func prepareRecv(fd: Int32, pollFirst: Bool, userData: UserData) { add(userData, .recv(fd: fd)) }
    func prepareRecv(fd: Int32, into bytes: PinnedBytes, offset: Int, length: Int, peek: Bool, userData: UserData) {
        add(userData, .recvBytes(fd: fd, bytes: bytes, offset: offset, length: length, peek: peek))
    }
    func prepareSend(fd: Int32, bufferID: UInt16, offset: Int, length: Int, userData: UserData, dontWait: Bool) {
        if !buffers.heldByWorker[Int(bufferID)] { world.fail("send from buffer \(bufferID), which the worker does not hold") }
        add(userData, .sendBuffer(fd: fd, bufferID: bufferID, offset: offset, length: length, dontWait: dontWait))
    }
    func prepareSend(fd: Int32, from bytes: PinnedBytes, offset: Int, length: Int, userData: UserData, dontWait: Bool, options: SQEOptions) {
        add(userData, .sendBytes(fd: fd, bytes: bytes, offset: offset, length: length, dontWait: dontWait), options)
    }
    func spliceNow(from source: Int32, to destination: Int32, length: Int) -> Int32 {
        splice(source, destination, length)
    }
    func preparePoll(fd: Int32, events: PollEvents, userData: UserData, options: SQEOptions) {
        add(userData, .poll(fd: fd, events: events), options)
    }
    func prepareCancelAll(fd: Int32, userData: UserData) { add(userData, .cancelAll(fd: fd)) }
    func prepareCancel(_ target: UserData, userData: UserData) { add(userData, .cancel(target: target)) }

    /// Starts what was prepared, then runs the world until a completion is ready (or
    /// nothing can happen any more).
    func submitAndWait(_ minimum: UInt32) {
        let batch = prepared
        prepared.removeAll()
        for p in batch { pending.append(p); if !p.blocked { start(p) } }
        world.runUntilCompletion()
    }

    func reapCompletions(_ body: (Completion) -> Void) {
        let batch = ready
        ready.removeAll()
        for c in batch { body(c) }
    }

    // MARK: synchronous calls

    func openStream(_ family: SocketAddress.Family) throws(SystemError) -> Int32 {
        if world.random.chance(world.faults.socketFailure) { throw SystemError("socket", errno: 24) }
        let socket = makeSocket(capacity: world.random.int(64...4096), address: world.upstreamLocalAddress(), local: world.upstreamLocalAddress())
        return allocate(.socket(socket))
    }

    func close(_ fd: Int32) { closeFD(fd, reset: false) }
    func closeWithReset(_ fd: Int32) { closeFD(fd, reset: true) }

    private func closeFD(_ fd: Int32, reset: Bool) {
        guard let file = files[fd] else {
            world.fail("close of fd \(fd), which is not open (closed twice?)")
            return
        }
        if let n = opsOnFD[fd], n > 0 {
            world.fail("fd \(fd) closed while \(n) operation(s) still name it")
        }
        switch file {
        case let .socket(s):
            s.closed = true
            if let peer = s.peer {
                // Unread bytes at close make the kernel send an RST, as does SO_LINGER 0.
                if reset || !s.inbound.isEmpty { peer.receiveReset() } else if !s.shutWrite { peer.peerShutWrite = true }
                peer.app?.peerChanged()
            }
        case let .listener(l):
            l.closed = true
            // Connections the kernel completed but nobody accepted are reset.
            for s in l.backlog { s.peer?.receiveReset(); s.peer?.app?.peerChanged() }
            l.backlog.removeAll()
        case let .pipeRead(p): p.readClosed = true
        case let .pipeWrite(p): p.writeClosed = true
        case .wake: break
        }
        release(fd)
    }

    func shutdownWrite(_ fd: Int32) {
        guard case let .socket(s)? = files[fd] else { world.fail("shutdown of fd \(fd), not an open socket"); return }
        guard !s.shutWrite else { return }
        s.shutWrite = true
        if let peer = s.peer, !s.wasReset { peer.peerShutWrite = true; peer.app?.peerChanged() }
    }

    func peerAddress(_ fd: Int32) -> SocketAddress? {
        guard case let .socket(s)? = files[fd], !s.wasReset else { return nil }
        return s.address
    }

    func localAddress(_ fd: Int32) -> SocketAddress? {
        guard case let .socket(s)? = files[fd] else { return nil }
        return s.local
    }

    func makePipe(size: Int) throws(SystemError) -> (read: Int32, write: Int32) {
        if world.random.chance(world.faults.pipeFailure) { throw SystemError("pipe2", errno: 24) }
        let pipe = SimPipe(capacity: size)
        return (allocate(.pipeRead(pipe)), allocate(.pipeWrite(pipe)))
    }

    func atUrgentMark(_ fd: Int32) -> Bool {
        guard case let .socket(s)? = files[fd] else { world.fail("SIOCATMARK on fd \(fd), not a socket"); return false }
        return s.atUrgentMark
    }

    func queuedBytes(inPipe fd: Int32) -> Int? {
        switch files[fd] {
        case let .pipeRead(p)?, let .pipeWrite(p)?: return p.bytes.count
        default: world.fail("FIONREAD on fd \(fd), not a pipe"); return nil
        }
    }

    func drainWakeup(_ fd: Int32) { wakeSignalled = false }
    func nowMs() -> Int64 { world.now }

    // MARK: the ring's behaviour

    private func start(_ p: SimPending) {
        p.blocked = false
        switch p.op {
        case let .timeout(ms): p.due = world.now + Int64(ms)
        case let .connect(_, endpoint):
            p.connectOutcome = world.connectOutcome(endpoint: endpoint)
            p.due = world.now + Int64(world.random.int(0...3))
        case .cancelAll, .cancel:
            runCancel(p)
            return
        default: break
        }
        if let t = p.guardTimeout, case let .linkTimeout(ms) = t.op { t.due = world.now + Int64(ms) }
    }

    /// Tries every pending operation once; true if any completed.
    func progress() -> Bool {
        var any = false
        for p in pending where !p.done && !p.blocked {
            if case .linkTimeout = p.op {
                // The timer fired first: the guarded operation is cancelled, and settling
                // it completes this timeout with -ETIME.
                if world.now >= p.due, let g = p.guarded, !g.done {
                    finish(g, -ECANCELED)
                    any = true
                }
                continue
            }
            if let result = attempt(p) {
                finish(p, result.0, flags: result.1, keep: result.2)
                any = true
            }
        }
        if any { pending.removeAll { $0.done } }
        return any
    }

    /// The earliest time a timer or a delayed operation is due.
    var nextDue: Int64 {
        pending.lazy.filter { !$0.done && !$0.blocked }.map(\.due).min() ?? .max
    }

    /// The result of `p` if it can complete now: (result, flags, stays armed).
    private func attempt(_ p: SimPending) -> (Int32, UInt32, Bool)? {
        let f = world.faults
        switch p.op {
        case let .accept(fd):
            guard case let .listener(l)? = files[fd] else { return (-EBADF, 0, false) }
            guard !l.backlog.isEmpty else { return nil }
            let socket = l.backlog.removeFirst()
            let accepted = allocate(.socket(socket))
            // A multishot accept may end after any completion (IORING_CQE_F_MORE missing).
            let more = !world.random.chance(f.multishotEnds)
            return (accepted, more ? Completion.moreFlag : 0, more)
        case let .connect(fd, endpoint):
            guard world.now >= p.due else { return nil }
            switch p.connectOutcome {
            case .refuse: return (-ECONNREFUSED, 0, false)
            case .blackhole: return nil
            case .accept:
                guard case let .socket(s)? = files[fd] else { return (-EBADF, 0, false) }
                world.backendAccepts(s, endpoint: endpoint)
                return (0, 0, false)
            }
        case .timeout:
            return world.now >= p.due ? (-ETIME, 0, false) : nil
        case let .recv(fd):
            guard case let .socket(s)? = files[fd] else { return (-EBADF, 0, false) }
            if s.wasReset { return (-ECONNRESET, 0, false) }
            if s.inbound.isEmpty {
                guard s.peerShutWrite else { return nil }
                // At EOF the kernel may still report a buffer as consumed.
                if world.random.chance(0.2), let bid = buffers.pick() { return (0, Completion.bufferFlags(bid), false) }
                return (0, 0, false)
            }
            if world.random.chance(f.noBuffers) { return (-ENOBUFS, 0, false) }
            guard let bid = buffers.pick() else { return (-ENOBUFS, 0, false) }
            s.atUrgentMark = false
            var n = min(s.inbound.count, buffers.bufferSize)
            if world.random.chance(f.shortIO) { n = world.random.int(1...n) }
            let bytes = s.inbound.take(n)
            let start = Int(bid) * buffers.bufferSize
            buffers.memory.replaceSubrange(start..<(start + n), with: bytes)
            s.peer?.app?.peerChanged()
            return (Int32(n), Completion.bufferFlags(bid), false)
        case let .recvBytes(fd, bytes, offset, length, peek):
            guard case let .socket(s)? = files[fd] else { return (-EBADF, 0, false) }
            if s.wasReset { return (-ECONNRESET, 0, false) }
            if s.inbound.isEmpty { return s.peerShutWrite ? (0, 0, false) : nil }
            var n = min(s.inbound.count, length)
            if world.random.chance(f.shortIO) { n = world.random.int(1...n) }
            if !peek { s.atUrgentMark = false }
            bytes.store(peek ? s.inbound.peek(n) : s.inbound.take(n), at: offset)
            if !peek { s.peer?.app?.peerChanged() }
            return (Int32(n), 0, false)
        case let .sendBuffer(fd, bid, offset, length, dontWait):
            if !buffers.heldByWorker[Int(bid)] { world.fail("a send reads buffer \(bid) after it was given back") }
            let start = Int(bid) * buffers.bufferSize + offset
            return send(fd, dontWait: dontWait, length: length, payload: true) { n in Array(self.buffers.memory[start..<(start + n)]) }
        case let .sendBytes(fd, bytes, offset, length, dontWait):
            // A linked send from pinned bytes is a PROXY header (linked to its time box);
            // an unlinked one is a spilled tail of payload.
            return send(fd, dontWait: dontWait, length: length, payload: !p.linked) { n in bytes.load(at: offset, length: n) }
        case let .poll(fd, events):
            if files[fd] == nil { return (-EBADF, 0, false) }
            if case .wake? = files[fd] { return wakeSignalled ? (Int32(POLLIN), 0, false) : nil }
            guard case let .socket(s)? = files[fd] else { return (-EBADF, 0, false) }
            if events.contains(.readable) && s.readable { return (Int32(s.wasReset ? POLLERR : POLLIN), 0, false) }
            if events.contains(.writable) && s.writable { return (Int32(s.wasReset ? POLLERR : POLLOUT), 0, false) }
            return nil
        case .linkTimeout, .cancelAll, .cancel:
            return nil
        }
    }

    private func send(_ fd: Int32, dontWait: Bool, length: Int, payload: Bool, bytes: (Int) -> [UInt8]) -> (Int32, UInt32, Bool)? {
        guard case let .socket(s)? = files[fd] else { return (-EBADF, 0, false) }
        if s.wasReset { return (-ECONNRESET, 0, false) }
        if s.shutWrite { world.fail("send on fd \(fd) after its write side was shut down"); return (-EPIPE, 0, false) }
        guard let peer = s.peer, !peer.closed else { return (-EPIPE, 0, false) }
        let room = s.sendRoom
        if room == 0 { return dontWait ? (-EAGAIN, 0, false) : nil }
        var n = min(room, length)
        if world.random.chance(world.faults.shortIO) { n = world.random.int(1...n) }
        world.delivered(bytes(n), to: peer, payload: payload)
        return (Int32(n), 0, false)
    }

    private func splice(_ from: Int32, _ to: Int32, _ length: Int) -> Int32 {
        switch (files[from], files[to]) {
        case let (.socket(s)?, .pipeWrite(p)?):
            if s.wasReset { return -ECONNRESET }
            if s.atUrgentMark { return s.peerShutWrite ? 0 : -EAGAIN }
            if s.inbound.isEmpty { return s.peerShutWrite ? 0 : -EAGAIN }
            var n = min(s.inbound.count, length, p.capacity - p.bytes.count)
            guard n > 0 else { return -EAGAIN }
            // TCP's splice stops at urgent data with bytes queued (a recv steps past it):
            // the engine must not poll and splice again in a loop, and must not take the
            // 0 it returns there once the peer has shut its side for the end.
            if world.random.chance(world.faults.shortIO / 4) {
                s.atUrgentMark = true
                return s.peerShutWrite ? 0 : -EAGAIN
            }
            if world.random.chance(world.faults.shortIO) { n = world.random.int(1...n) }
            p.bytes.append(s.inbound.take(n))
            s.peer?.app?.peerChanged()
            return Int32(n)
        case let (.pipeRead(p)?, .socket(s)?):
            if s.wasReset { return -ECONNRESET }
            guard let peer = s.peer, !peer.closed else { return -EPIPE }
            var n = min(p.bytes.count, length, s.sendRoom)
            guard n > 0 else { return -EAGAIN }
            if world.random.chance(world.faults.shortIO) { n = world.random.int(1...n) }
            world.delivered(Array(p.bytes.take(n)), to: peer, payload: true)
            return Int32(n)
        default:
            world.fail("splice between fds \(from) and \(to), which are not a socket and a pipe")
            return -EINVAL
        }
    }

    private func runCancel(_ p: SimPending) {
        var cancelled = 0
        let targets: [SimPending]
        switch p.op {
        case let .cancelAll(fd): targets = pending.filter { !$0.done && $0 !== p && $0.op.file == fd }
        case let .cancel(target): targets = pending.filter { !$0.done && $0.userData == target }
        default: targets = []
        }
        // The cancel's own completion comes before or after those it cancels.
        let first = world.random.chance(0.5)
        var deferred: [(SimPending, Int32, UInt32)] = []
        for t in targets {
            // One that could complete right now may win the race and keep its result
            // (not a multishot accept: a cancel always ends it).
            var multishot = false
            if case .accept = t.op { multishot = true }
            if !multishot && world.random.chance(world.faults.cancelLoses), let r = attempt(t) {
                deferred.append((t, r.0, r.1))
                continue
            }
            cancelled += 1
            deferred.append((t, -ECANCELED, 0))
        }
        if first { finish(p, cancelled > 0 ? Int32(cancelled) : -ENOENT) }
        for (t, r, flags) in deferred { finish(t, r, flags: flags) }
        if !first { finish(p, cancelled > 0 ? Int32(cancelled) : -ENOENT) }
    }

    /// Posts the completion of `p` and settles its chain and link timeout.
    private func finish(_ p: SimPending, _ result: Int32, flags: UInt32 = 0, keep: Bool = false) {
        if world.tracing { world.trace("complete slot \(p.userData.slot) gen \(p.userData.generation) kind \(p.userData.kind) \(p.op) -> \(result) flags \(flags)") }
        ready.append(Completion(userData: p.userData, result: result, flags: flags))
        if keep { return }
        p.done = true
        for fd in p.op.fds { opsOnFD[fd] = (opsOnFD[fd] ?? 0) - 1 }
        if let t = p.guardTimeout, !t.done {
            if result == -ECANCELED && world.now >= t.due { finish(t, -ETIME) } else { finish(t, -ECANCELED) }
        }
        if let n = p.next {
            let success: Bool
            if case .poll = p.op { success = result >= 0 } else { success = result >= 0 }
            if success { start(n) } else { finish(n, -ECANCELED) }
        }
    }
}

extension Completion {
    static let moreFlag: UInt32 = 1 << 1
    static func bufferFlags(_ bid: UInt16) -> UInt32 { 1 | UInt32(bid) << 16 }
}

/// A table indexed by fd (small non-negative integers, reused lowest first).
struct FDTable<Value> {
    private var slots: [Value?] = []

    subscript(fd: Int32) -> Value? {
        get { fd >= 0 && Int(fd) < slots.count ? slots[Int(fd)] : nil }
        set {
            guard fd >= 0 else { return }
            if Int(fd) >= slots.count { slots += [Value?](repeating: nil, count: Int(fd) + 1 - slots.count) }
            slots[Int(fd)] = newValue
        }
    }

    /// Every fd with a value, and the value.
    var entries: [(Int32, Value)] {
        slots.enumerated().compactMap { i, v in v.map { (Int32(i), $0) } }
    }
}
