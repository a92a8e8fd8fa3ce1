import PortunusRing

/// The open files and connection slots a run needs, worked out before anything is bound,
/// so that a config whose listeners cannot fit the open-file limit is refused by
/// `--check` and by start-up alike, with the numbers, instead of failing half-way
/// through binding.
public struct ResourceBudget: Sendable, Equatable {
    /// Open files kept aside for rings, eventfds, logging, probes and the stats socket.
    public static let reservedFDs = 256
    /// Slots a worker must at least have for the run to be worth starting.
    public static let minimumConnectionsPerWorker = 16
    /// Connections when `max_connections` is absent and the open-file limit is higher
    /// (a container's `LimitNOFILE=infinity` is 2^30): 2^18.
    public static let defaultMaxConnections = 1 << 18

    /// The open-file limit the budget was made for (the soft limit, once raised to the hard one).
    public let fdLimit: Int
    /// Listen sockets: listen ports × 2 address families × workers.
    public let listenerSockets: Int
    /// Pipe fds the splice and auto paths may hold: 2 × pipe budget × workers.
    public let pipeFDs: Int
    /// Concurrent connections the run accepts (each holds two sockets).
    public let connections: Int
    /// `connections` divided evenly between the workers (at least 1 each): a worker at its
    /// share rejects new clients even if another worker has room.
    public let connectionsPerWorker: Int

    /// The budget for `plan` with `settings`, under `maxConnections` (the config's
    /// `max_connections`) and the open-file limit `fdLimit` (default: this process's,
    /// after raising the soft limit to the hard one). Throws when the listeners and the
    /// minimum number of connections cannot fit.
    public static func make(plan: ForwardingPlan, settings: EngineSettings, maxConnections: Int?,
                            fdLimit: Int? = nil) throws(EngineError) -> ResourceBudget {
        let fdLimit = fdLimit ?? ProcessSetup.raiseOpenFileLimit()
        let workers = settings.workers
        let listenerSockets = (plan.listeners.count + plan.udpListeners.count) * 2 * workers
        let pipeFDs = settings.relay == .buffers ? 0 : 2 * settings.pipeLimit * workers
        // UDP flows hold one socket each: their caps are set aside, up to a quarter of
        // what is left (past it, a new flow whose socket cannot open drops its datagram).
        let flowCaps = Set(plan.udpListeners.map(\.rule)).reduce(0) { $0 + plan.ruleUDPMaxFlows[$1] }
        let flowFDs = min(flowCaps, max(0, fdLimit - reservedFDs - listenerSockets - pipeFDs) / 4)
        let fixed = reservedFDs + listenerSockets + pipeFDs + flowFDs
        let fdConnections = max(0, (fdLimit - fixed) / 2)
        let wanted = maxConnections ?? defaultMaxConnections
        let minimum = min(wanted, minimumConnectionsPerWorker * workers)
        guard fdConnections >= minimum else {
            throw .fdLimitTooLow(limit: fdLimit, needed: fixed + 2 * minimum, ports: plan.listeners.count + plan.udpListeners.count, workers: workers,
                                 listenerSockets: listenerSockets, pipeFDs: pipeFDs)
        }
        let connections = min(wanted, fdConnections)
        let perWorker = settings.connectionsPerWorker ?? max(1, connections / workers)
        return ResourceBudget(fdLimit: fdLimit, listenerSockets: listenerSockets, pipeFDs: pipeFDs,
                              connections: connections, connectionsPerWorker: perWorker)
    }
}
