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
    private let dropped = Mutex<[Bool]>([])

    @_spi(Simulation) public init() {}

    var stopRequested: Bool { stop.load(ordering: .acquiring) }
    var retireRequested: Bool { retire.load(ordering: .acquiring) }
    /// Per plan TCP listener: whether the new configuration dropped its port.
    var droppedListeners: [Bool] { dropped.withLock { $0 } }

    func requestStop() { stop.store(true, ordering: .releasing) }

    @_spi(Simulation) public func requestRetire(droppedListeners: [Bool]) {
        dropped.withLock { $0 = droppedListeners }
        retire.store(true, ordering: .releasing)
    }
}

/// Which connections a drain timer's end cuts (its user data's slot).
enum DrainScope {
    /// Every connection still open: a stop.
    static let all: UInt32 = 0
    /// Only connections on listen ports a reload dropped: a retirement.
    static let droppedPorts: UInt32 = 1
}
