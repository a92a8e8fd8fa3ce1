import Synchronization

/// What the engine asks of its workers through their wake-up eventfd, which carries
/// no more than "look": stop (drain every connection within the budget), or retire
/// (a reload put another engine on the listen sockets: accept nothing more, keep the
/// open connections, and cut only those on ports the new configuration dropped once
/// the budget is spent). Written by the thread that owns the engine before it
/// signals, read by each worker when it wakes; shared by the engine's workers.
@_spi(Simulation) public final class WorkerControl: Sendable {
    private let stop = Atomic<Bool>(false)
    private let retire = Atomic<Bool>(false)
    private let cut = Atomic<Bool>(false)
    private let drain = Atomic<Int>(-1)
    private let dropped = Mutex<[Bool]>([])

    @_spi(Simulation) public init() {}

    var stopRequested: Bool { stop.load(ordering: .acquiring) }
    var retireRequested: Bool { retire.load(ordering: .acquiring) }
    /// Every connection is to be reset now (a stopped engine past the forwarder's cap).
    var cutRequested: Bool { cut.load(ordering: .acquiring) }
    /// The drain budget of the configuration in force when asked (a reload may have
    /// changed `shutdown_drain_secs` since the worker started); nil: the worker's own.
    var drainMs: Int? { let ms = drain.load(ordering: .acquiring); return ms < 0 ? nil : ms }
    /// Per plan TCP listener: whether the new configuration dropped its port.
    var droppedListeners: [Bool] { dropped.withLock { $0 } }

    @_spi(Simulation) public func requestStop(drainMs: Int? = nil) {
        if let drainMs { drain.store(drainMs, ordering: .releasing) }
        stop.store(true, ordering: .releasing)
    }

    @_spi(Simulation) public func requestRetire(droppedListeners: [Bool], drainMs: Int? = nil) {
        dropped.withLock { $0 = droppedListeners }
        if let drainMs { drain.store(drainMs, ordering: .releasing) }
        retire.store(true, ordering: .releasing)
    }

    func requestCut() {
        cut.store(true, ordering: .releasing)
        stop.store(true, ordering: .releasing)
    }
}

/// Which connections a drain timer's end cuts (its user data's slot).
enum DrainScope {
    /// Every connection still open: a stop.
    static let all: UInt32 = 0
    /// Only connections on listen ports a reload dropped: a retirement.
    static let droppedPorts: UInt32 = 1
}
