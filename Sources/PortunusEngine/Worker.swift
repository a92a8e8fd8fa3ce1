import Glibc
import Logging
import PortunusResolver
import PortunusRing

/// What a worker is handed by the engine: everything it needs that must be created
/// before its thread starts (listeners are bound up front so bind errors are reported
/// at start-up, in one place).
@_spi(Simulation) public struct WorkerSetup: Sendable {
    let index: Int
    let plan: ForwardingPlan
    let settings: EngineSettings
    /// Connection slots of this worker (``ResourceBudget/connectionsPerWorker``).
    let connections: Int
    /// Listener sockets owned by this worker, and the plan listener each serves.
    let listenerFDs: [Int32]
    let listenerPlanIndex: [Int]
    let wakeFD: Int32
    let counters: WorkerCounters
    let logger: Logger
    /// The health of every plan endpoint, shared by all workers.
    let health: TargetHealth
    /// The resolver thread, when the plan has DNS-named targets.
    let resolver: Resolver?
    /// UDP sockets owned by this worker, and the plan UDP listener each serves.
    let udpListenerFDs: [Int32]
    let udpListenerPlanIndex: [Int]
    /// `udp_max_flows` per rule, shared by the workers.
    let flowBudget: UDPFlowBudget
    /// What a wake-up asks for: stop, or retire after a reload.
    let control: WorkerControl

    @_spi(Simulation) public init(index: Int, plan: ForwardingPlan, settings: EngineSettings, connections: Int, listenerFDs: [Int32],
                                  listenerPlanIndex: [Int], wakeFD: Int32, counters: WorkerCounters, logger: Logger,
                                  health: TargetHealth? = nil, resolver: Resolver? = nil,
                                  udpListenerFDs: [Int32] = [], udpListenerPlanIndex: [Int] = [], flowBudget: UDPFlowBudget? = nil,
                                  control: WorkerControl = WorkerControl()) {
        self.control = control
        self.udpListenerFDs = udpListenerFDs
        self.udpListenerPlanIndex = udpListenerPlanIndex
        self.flowBudget = flowBudget ?? UDPFlowBudget(caps: plan.ruleUDPMaxFlows)
        precondition(resolver != nil || plan.names.isEmpty, "a plan with DNS-named targets needs a resolver")
        self.health = health ?? TargetHealth(endpoints: plan.endpoints.count)
        self.resolver = resolver
        self.index = index
        self.plan = plan
        self.settings = settings
        self.connections = connections
        self.listenerFDs = listenerFDs
        self.listenerPlanIndex = listenerPlanIndex
        self.wakeFD = wakeFD
        self.counters = counters
        self.logger = logger
    }
}

/// Fixed layout of the worker's per-slot areas (a generic type cannot hold static stored properties).
enum WorkerLayout {
    /// Bytes reserved per slot for its PROXY header (the longest, v1 TCP6, is 104).
    static let preludeStride = 256
    /// With `accept_proxy` on some rule: the longest inbound header taken (a v2 header
    /// with the TLVs cloud load balancers and HAProxy send is well under it), and the
    /// outbound area, room for an IPv6 v2 header passing all of those TLVs on plus a
    /// unique id and a CRC32C.
    static let inboundHeaderLimit = 512
    static let outboundStrideWithProxyIn = 640
}

/// One worker: a thread that alone creates and drives its ring, accepts on its own
/// SO_REUSEPORT listeners and relays the connections it accepted. Everything is
/// preallocated at start; completion handlers allocate nothing. Generic over its seam
/// to the kernel (``WorkerIO``): ``KernelIO`` in production, a simulation in tests.
@_spi(Simulation) public final class Worker<IO: WorkerIO> {
    let setup: WorkerSetup
    let io: IO
    /// Every mode has the buffer ring: the splice paths fall back to it when the pipe
    /// budget is spent.
    let buffers: IO.Buffers
    let endpoints: SocketAddressTable
    let endpointFamilies: [SocketAddress.Family]
    let connectTimeout: PinnedTimeout
    let drainTimeout: PinnedTimeout
    let preludeTimeout: PinnedTimeout
    /// Per slot, at `slot * preludeStride`: its outbound PROXY header (`outboundStride`
    /// bytes, stable until the send completes), then, when some rule has accept_proxy,
    /// its inbound header (``WorkerLayout/inboundHeaderLimit`` bytes).
    let preludes: PinnedBytes
    let preludeStride: Int
    let outboundStride: Int
    /// The key of ``connectionID(_:)``: random per worker, and a serial per connection.
    let idKey: (UInt64, UInt64)
    var connectionSerial: UInt64 = 0
    /// Per slot and direction, `bufferSize` bytes for the unsent tail of a send that
    /// stalled while buffers were scarce (reserved; memory only where written).
    let spill: PinnedBytes
    /// Provided buffers kept by sends waiting in the kernel for room; held under half the ring.
    var buffersHeldWaiting = 0
    let acceptRetryDelay = PinnedTimeout(milliseconds: 100)
    /// A burst that touched more provided buffers than a steady load needs leaves their
    /// pages resident: this long after it, they are given back (one timer, armed only
    /// while there is memory to give back, so an idle worker sleeps).
    let bufferTrimDelay = PinnedTimeout(milliseconds: 5000)
    var bufferTrimArmed = false
    /// The idle sweep's period (nil: no rule has an idle timeout), and the coarse clock
    /// read once per batch of completions.
    let idleSweep: PinnedTimeout?
    var nowMs: Int64
    let slab: ConnectionSlab
    var parked: ParkedQueue
    var pipePool: [(read: Int32, write: Int32)] = []
    /// Empty pipes kept for reuse (each 2 fds, no memory until written): creating one costs
    /// two syscalls, so a small pool covers the churn of streaming halves.
    let pipePoolLimit = 64
    /// Pipes held by connections (auto mode caps it).
    var pipesInUse = 0
    /// This worker's listener sockets; -1 once closed on stop.
    var listenerFDs: [Int32]
    var armedAccepts = 0
    /// No longer accepting: stopped, or retired by a reload.
    var stopping = false
    /// Retired by a reload (``WorkerControl``): accepts no new client, but the
    /// connections it holds run on under their rules (idle timeouts included) until
    /// they end; only those on listen ports the new configuration dropped are cut when
    /// the drain budget is spent. A later stop turns it into a plain stop.
    var retiring = false
    /// Once retiring: per plan TCP listener, whether the new configuration dropped its port.
    var droppedListeners: [Bool] = []
    /// The plan listener of every connection a retirement's drain cut (the simulator
    /// checks each was on a dropped port); grows only when a drain budget is spent.
    @_spi(Simulation) public private(set) var retirementCuts: [Int32] = []
    /// The drain timeouts prepared (at most one per scope: a retirement's, a stop's),
    /// kept until the worker ends since the kernel reads them at submission.
    var drainTimeouts: [PinnedTimeout] = []
    let counters: WorkerCounters
    let logger: Logger
    var failureLog: RateLimitedLog
    /// This worker's copy of each DNS name's answers, and its waiting connections.
    var names: [LocalName]
    /// Scratch for the answers taken from the mailbox (kept to reuse its storage).
    var answers: [NameAnswer] = []
    /// Per slot, the address a connect to a DNS-named target dials (the kernel may read
    /// it after the prepare call); nil when the plan has no names.
    let dialAddresses: SocketAddressTable?
    /// UDP: this worker's flows (nil without UDP rules), its UDP sockets (-1 once closed
    /// on stop), the flow each datagram buffer's send belongs to, and the bookkeeping
    /// of recvs armed, retried, and waiting for a buffer.
    let flows: UDPFlowTable?
    var udpSockets: [Int32]
    var sendFlow: [Int32]
    var udpArmed = 0
    var udpRetries = 0
    var flowsAwaitingBuffers: [(Int32, UInt32)] = []
    let flowSweep: PinnedTimeout?
    let udpRetryDelay = PinnedTimeout(milliseconds: 10)

    /// A worker over `io` (created on the thread that will run it). `drainMs`: the
    /// shutdown drain budget.
    @_spi(Simulation) public init(_ setup: WorkerSetup, io: IO, drainMs: Int) throws(SystemError) {
        self.setup = setup
        self.io = io
        buffers = io.buffers
        nowMs = io.nowMs()
        counters = setup.counters
        logger = setup.logger
        endpoints = SocketAddressTable(capacity: setup.plan.endpoints.count)
        for address in setup.plan.endpoints { endpoints.append(address) }
        endpointFamilies = setup.plan.endpoints.map(\.family)
        connectTimeout = PinnedTimeout(milliseconds: setup.settings.connectTimeoutMs)
        drainTimeout = PinnedTimeout(milliseconds: drainMs)
        preludeTimeout = PinnedTimeout(milliseconds: setup.settings.preludeTimeoutMs)
        idleSweep = Self.idleSweepMs(setup.plan).map { PinnedTimeout(milliseconds: $0) }
        outboundStride = setup.plan.acceptsProxy ? WorkerLayout.outboundStrideWithProxyIn : WorkerLayout.preludeStride
        preludeStride = outboundStride + (setup.plan.acceptsProxy ? WorkerLayout.inboundHeaderLimit : 0)
        preludes = try PinnedBytes(capacity: setup.plan.endpointPrelude.contains { $0 != nil } || setup.plan.acceptsProxy
            ? setup.connections * preludeStride : 1)
        idKey = (UInt64.random(in: .min ... .max), UInt64.random(in: .min ... .max))
        spill = try PinnedBytes(capacity: setup.connections * 2 * setup.settings.bufferSize)
        slab = try ConnectionSlab(capacity: setup.connections)
        parked = try ParkedQueue(capacity: 2 * setup.connections)
        pipePool.reserveCapacity(pipePoolLimit)
        failureLog = RateLimitedLog(rules: setup.plan.ruleNames.count)
        listenerFDs = setup.listenerFDs
        names = Array(repeating: LocalName(), count: setup.plan.names.count)
        udpSockets = setup.udpListenerFDs
        sendFlow = Array(repeating: -1, count: setup.settings.datagramBufferCount)
        flowsAwaitingBuffers.reserveCapacity(1024)
        let flowCapacity = Set(setup.plan.udpListeners.map(\.rule)).reduce(0) { $0 + setup.plan.ruleUDPMaxFlows[$1] }
        flows = flowCapacity == 0 ? nil : try UDPFlowTable(capacity: min(flowCapacity, 1 << 24))
        flowSweep = Self.flowSweepMs(setup.plan).map { PinnedTimeout(milliseconds: Int($0)) }
        dialAddresses = setup.plan.names.isEmpty ? nil : SocketAddressTable(capacity: setup.connections)
    }

    /// Runs until stopped and every connection has ended.
    @_spi(Simulation) public func run() {
        arm()
        while !isFinished { step() }
        finish()
    }

    /// Arms the listeners and the wake-up poll.
    @_spi(Simulation) public func arm() {
        for i in listenerFDs.indices { armAccept(i) }
        armWake()
        armIdleSweep()
        armNameAnswers()
        armUDP()
    }

    /// Stopped, and nothing left to wait for.
    @_spi(Simulation) public var isFinished: Bool {
        stopping && slab.inUse == 0 && armedAccepts == 0 && udpArmed == 0 && udpRetries == 0 && (flows?.count ?? 0) == 0
    }

    /// One turn of the loop: submit, wait for at least one completion, handle the batch.
    @_spi(Simulation) public func step() {
        io.submitAndWait(1)
        nowMs = io.nowMs()
        io.reapCompletions { handle($0) }
        if !bufferTrimArmed && (!stopping || retiring) && buffers.hasIdleMemory {
            io.prepareTimeout(bufferTrimDelay, userData: UserData(slot: 0, generation: 0, kind: OperationKind.bufferTrim.rawValue))
            bufferTrimArmed = true
        }
    }

    /// Releases the listeners and pooled pipes. Every connection has ended, so every
    /// buffer and pipe a connection held has come back.
    @_spi(Simulation) public func finish() {
        assert(buffers.heldCount == 0, "\(buffers.heldCount) provided buffers never given back")
        assert(pipesInUse == 0, "\(pipesInUse) pipes still held by connections")
        assert(buffersHeldWaiting == 0, "\(buffersHeldWaiting) buffers still counted as held by waiting halves")
        for i in listenerFDs.indices { closeListener(i) }
        for fd in udpSockets where fd >= 0 { io.close(fd) }
        for pipe in pipePool { io.close(pipe.read); io.close(pipe.write) }
        pipePool.removeAll()
    }

    @inline(__always)
    private func handle(_ completion: Completion) {
        guard let (kind, direction) = OperationKind.decode(completion.userData.kind) else {
            preconditionFailure("unknown operation kind \(completion.userData.kind)")
        }
        switch kind {
        case .udpRecv, .udpFlowRecv, .udpSend, .udpCancel, .udpRetry, .udpSweep:
            onUDP(kind, direction, completion)
            return
        default: break
        }
        // A completion that names a provided buffer hands it to us, whatever the
        // operation's outcome; the handler below either sends from it or gives it back
        // (ownership rule at `onRecv`).
        if let bid = completion.bufferID { buffers.take(bid) }
        switch kind {
        case .accept: onAccept(completion)
        case .acceptRetry:
            armedAccepts -= 1
            if stopping { closeListener(Int(completion.userData.slot)) } else { armAccept(Int(completion.userData.slot)) }
        case .wake: onWake()
        case .drainTimer: onDrainExpired(onlyDroppedPorts: completion.userData.slot == DrainScope.droppedPorts)
        case .stopAccept: break
        case .idleSweep: onIdleSweep()
        case .bufferTrim:
            bufferTrimArmed = false
            buffers.releaseIdleMemory()
        case .nameAnswers: onNameAnswers()
        default:
            guard let slot = slab.resolve(completion.userData) else {
                // A completion for a previous occupant of the slot. Cannot happen while
                // slots are freed only at zero in-flight, but a buffer it carries must
                // still go back to the ring.
                if let bid = completion.bufferID { recycle(bid) }
                return
            }
            // Cheap checks that stay on in release builds: a completion the slot did not
            // count, or an error only our own malformed SQE can cause, is a defect, and
            // going on would act on a state that no longer matches the kernel's.
            precondition(slab[slot].inFlight > 0,
                         "completion \(kind) (\(direction)) for slot \(slot) in state \(slab[slot].state) with no operation in flight")
            if Self.isOwnSQEError(kind, completion.result) {
                preconditionFailure("\(kind) (\(direction)) for slot \(slot) in state \(slab[slot].state) failed with "
                    + "\(SystemError("io_uring", result: completion.result)): the engine submitted a malformed operation")
            }
            slab[slot].inFlight -= 1
            switch kind {
            case .connect: onConnect(slot, completion.result)
            // Timeouts and cancels report nothing the machines act on: the operation they
            // guard reports for them.
            case .connectTimeout, .preludeTimeout, .cancel: break
            case .poll: onPollThenSpliceIn(slot, direction, completion.result)
            case .prelude: onPreludeSent(slot, completion.result)
            case .resolveTimer: onResolveTimer(slot)
            case .recv: onRecv(slot, direction, completion)
            case .send: onSend(slot, direction, completion.result)
            case .readable: onReadable(slot, direction, completion.result)
            case .proxyPeek: onProxyPeek(slot, completion.result)
            case .proxyTake: onProxyTake(slot, completion.result)
            case .writable: onWritable(slot, direction, completion.result)
            default: preconditionFailure("unexpected operation kind \(kind)")
            }
            settleIfDone(slot)
        }
    }

    /// EBADF, EFAULT and EINVAL on an operation that names a connection's own sockets,
    /// pipes or pinned memory can only mean the SQE itself was wrong (a closed fd, a
    /// bad pointer or flag). Cancels (which may name an fd already closed on stop) and
    /// timeouts are not such operations.
    static func isOwnSQEError(_ kind: OperationKind, _ result: Int32) -> Bool {
        guard result == -EBADF || result == -EFAULT || result == -EINVAL else { return false }
        switch kind {
        case .connect, .prelude, .recv, .send, .poll, .readable, .writable, .proxyPeek, .proxyTake: return true
        default: return false
        }
    }

    // MARK: accept

    private func armAccept(_ listener: Int) {
        io.prepareMultishotAccept(fd: listenerFDs[listener], userData: UserData(slot: UInt32(listener), generation: 0, kind: OperationKind.accept.rawValue))
        armedAccepts += 1
    }

    private func onAccept(_ c: Completion) {
        let listener = Int(c.userData.slot)
        if !c.hasMore {
            armedAccepts -= 1
            if stopping {
                // The accept is gone, so the kernel holds no reference to the socket any
                // more: closing it now stops the listening at once, and clients still in
                // the backlog or arriving later are refused instead of left hanging.
                closeListener(listener)
            } else {
                if c.result == -EMFILE || c.result == -ENFILE || c.result == -ENOMEM || c.result == -ENOBUFS {
                    // Out of fds or memory: re-arming at once would fail at once, in a
                    // loop. Wait 100 ms; connections keep queueing in the backlog.
                    io.prepareTimeout(acceptRetryDelay, userData: UserData(slot: UInt32(listener), generation: 0, kind: OperationKind.acceptRetry.rawValue))
                    armedAccepts += 1
                } else {
                    armAccept(listener)
                }
            }
        }
        let planListener = setup.listenerPlanIndex[listener]
        let rule = setup.plan.listeners[planListener].rule
        guard c.result >= 0 else {
            if c.result != -ECANCELED {
                if let suppressed = failureLog.admit(.acceptFailed, rule: rule) {
                    logger.warning("accept failed", metadata: [
                        "event": "rule.conn_error", "rule": "\(setup.plan.ruleNames[rule])",
                        "error": "\(SystemError("accept", result: c.result))", "suppressed": .stringConvertible(suppressed),
                    ])
                }
            }
            return
        }
        let fd = c.result
        // Stopped: the client is closed. Retired: a client the kernel handed to this
        // worker before its accept was cancelled is served like any other, unless the
        // new configuration dropped its port (closed, as on stop: that port's listener is closing).
        if stopping && (!retiring || droppedListeners[planListener]) { io.close(fd); return }
        // Ownership: the slot (and with it the prelude bytes at slot × stride, its two
        // sockets and any pipe its halves take) belongs to this connection until
        // `release`, which runs only when no operation of the slot is in flight; the
        // generation bumped there makes any later completion for it a stale one.
        // The accepted fd is ours from here and is closed only in `release`: an SQE that
        // names it can never meet a number the kernel has given to another socket.
        guard let slot = slab.acquire() else {
            // At the connection limit: the client is closed at once (RST), not queued.
            counters.add(.rejected, rule: rule, 1)
            io.closeWithReset(fd)
            if let suppressed = failureLog.admit(.rejected, rule: rule) {
                logger.warning("connection limit reached; new client closed", metadata: [
                    "event": "rule.conn_rejected", "rule": "\(setup.plan.ruleNames[rule])", "worker": .stringConvertible(setup.index),
                    "limit": .stringConvertible(setup.connections), "suppressed": .stringConvertible(suppressed),
                ])
            }
            return
        }
        slab[slot].client = fd
        slab[slot].listener = Int32(planListener)
        slab[slot].rule = Int32(rule)
        connectionSerial &+= 1
        slab[slot].serial = connectionSerial
        counters.add(.connectionsTotal, rule: rule, 1)
        counters.add(.connectionsActive, rule: rule, 1)
        if setup.plan.ruleAcceptProxy[rule] != nil {
            // The time box of the header starts now (the idle sweep reads it).
            slab[slot].lastActiveMs = nowMs
            connectionEvent(slot, .awaitProxyHeader)
            return
        }
        connectionEvent(slot, .start(failedTargets: failedTargets(planListener)))
    }

    /// Which of the listener's targets (bit i: the i-th, of the first 64) are Failed now.
    @inline(__always)
    func failedTargets(_ listener: Int) -> UInt64 {
        let range = setup.plan.listeners[listener].endpoints
        guard range.count > 1 else { return 0 }
        var mask: UInt64 = 0
        for (bit, endpoint) in range.prefix(64).enumerated() where setup.health.isFailed(endpoint) { mask |= 1 << UInt64(bit) }
        return mask
    }

    // MARK: stop and drain

    private func closeListener(_ listener: Int) {
        guard listenerFDs[listener] >= 0 else { return }
        io.close(listenerFDs[listener])
        listenerFDs[listener] = -1
    }

    private func onWake() {
        io.drainWakeup(setup.wakeFD)
        let control = setup.control
        // A wake-up that asks for nothing (the simulator's at first) is a stop.
        let retire = control.retireRequested && !control.stopRequested
        if stopping && !retiring {
            // Stopped already: only a cut is news.
            if control.cutRequested { onDrainExpired(onlyDroppedPorts: false) } else { armWake() }
            return
        }
        if stopping && retire { armWake(); return }
        if !stopping { stopAccepting() }
        stopping = true
        // The wake-up poll is one-shot: re-armed while a later wake-up (a stop after a
        // retirement, a cut after a stop) can still matter.
        armWake()
        if retire {
            retiring = true
            droppedListeners = control.droppedListeners
            guard slab.activeSlots().contains(where: { droppedListeners[Int(slab[$0].listener)] }) else { return }
            armDrain(DrainScope.droppedPorts)
        } else {
            retiring = false
            if control.cutRequested { onDrainExpired(onlyDroppedPorts: false); return }
            if setup.plan.acceptsProxy { cutProxyHeaderReaders() }
            if slab.inUse > 0 { armDrain(DrainScope.all) }
        }
    }

    /// The wake-up eventfd's poll (one-shot: re-armed while a wake-up can still matter).
    private func armWake() {
        io.preparePoll(fd: setup.wakeFD, events: .readable, userData: UserData(slot: 0, generation: 0, kind: OperationKind.wake.rawValue))
    }

    /// Cancels every accept and UDP receive: the listeners close as their operations end.
    private func stopAccepting() {
        for fd in listenerFDs where fd >= 0 {
            io.prepareCancelAll(fd: fd, userData: UserData(slot: 0, generation: 0, kind: OperationKind.stopAccept.rawValue))
        }
        stopUDP()
        // Pending accept-retry timers are cut short too (their completion re-arms nothing now).
        for listener in listenerFDs.indices {
            io.prepareCancel(UserData(slot: UInt32(listener), generation: 0, kind: OperationKind.acceptRetry.rawValue),
                               userData: UserData(slot: 0, generation: 0, kind: OperationKind.stopAccept.rawValue))
        }
    }

    /// The drain budget starts: `scope` says which connections its end cuts. The budget
    /// is the one the engine passed with the request (the configuration in force then),
    /// else the worker's own; each scope's timeout is pinned until its worker ends.
    private func armDrain(_ scope: UInt32) {
        let ms = setup.control.drainMs ?? drainTimeout.milliseconds
        if ms == 0 { onDrainExpired(onlyDroppedPorts: scope == DrainScope.droppedPorts); return }
        let timeout = ms == drainTimeout.milliseconds ? drainTimeout : PinnedTimeout(milliseconds: ms)
        drainTimeouts.append(timeout)
        io.prepareTimeout(timeout, userData: UserData(slot: scope, generation: 0, kind: OperationKind.drainTimer.rawValue))
    }

    /// The drain budget is spent: the connections still open are cut (RST); after a
    /// reload, only those on listen ports the new configuration dropped.
    private func onDrainExpired(onlyDroppedPorts: Bool) {
        var open = slab.activeSlots()
        if onlyDroppedPorts {
            open.removeAll { !droppedListeners[Int(slab[$0].listener)] }
            retirementCuts += open.map { slab[$0].listener }
        }
        if !open.isEmpty {
            let (message, event) = onlyDroppedPorts
                ? ("drain budget spent; closing connections on listen ports the reload dropped", "standalone.reload_drain_expired")
                : ("drain budget spent; closing open connections", "shutdown.drain_expired")
            logger.info("\(message)", metadata: [
                "event": "\(event)", "worker": .stringConvertible(setup.index), "connections": .stringConvertible(open.count),
            ])
        }
        for slot in open { close(slot, reset: true) }
    }
}
