import Glibc
import Logging
import Synchronization
import PortunusConfig
import PortunusResolver
import PortunusRing

/// Every problem that stopped the engine from starting, one per rule and port.
public struct EngineStartupError: Error, Sendable, CustomStringConvertible {
    public let problems: [EngineError]
    public var description: String { problems.map(\.description).joined(separator: "\n") }
}

/// The data plane: N workers, each a thread with its own ring and its own
/// SO_REUSEPORT listeners on every listen port (IPv4 and IPv6).
///
/// Lifecycle: `init` compiles the plan and binds every listener (so a port in use is
/// reported before anything runs), `start()` launches the workers, `stop()` asks them
/// to stop accepting and drain, `wait()` returns when all have ended.
///
/// A reload (``Forwarder``) makes a new engine `inheriting` the running one: the new
/// engine's worker i takes a duplicate of the old worker i's socket for every port both
/// configurations listen on, so those sockets never close and no client is refused;
/// then `retire` tells the old workers to stop accepting and keep their connections.
public final class Engine: @unchecked Sendable {
    // @unchecked: `threads`, `setups` and `socketKeys` are touched only by the thread that
    // owns the Engine (init/start/retire/wait); `workerCounters`, `control` and `ended`
    // are safe to use from any thread.
    public let plan: ForwardingPlan
    /// The settings as run: `connectionsPerWorker` is the budget's.
    public let settings: EngineSettings
    public let budget: ResourceBudget
    private let logger: Logger
    private let drainMs: Int
    private var setups: [WorkerSetup] = []
    private var threads: [pthread_t] = []
    private let workerCounters: [WorkerCounters]
    /// Target health, shared by the workers.
    public let health: TargetHealth
    /// `udp_max_flows` per rule, shared by the workers.
    let flowBudget: UDPFlowBudget
    /// The DNS resolver thread, when some target is named by DNS.
    private let resolver: Resolver?
    /// Stop or retire: what the workers' wake-ups mean.
    private let control = WorkerControl()
    /// Workers whose thread has ended.
    private let ended = EndedThreads()
    /// Per worker, what each of its listener sockets is, parallel to its setup's fds.
    private var socketKeys: [[SocketKey]] = []

    /// A listen socket's identity across reloads.
    private struct SocketKey: Hashable {
        let udp: Bool
        let port: UInt16
        let ipv6: Bool
    }

    /// `inheriting`: the running engine a reload replaces; its sockets on the ports
    /// `configuration` keeps are shared instead of bound anew, and the health of the
    /// targets both have is carried over.
    public init(configuration: Configuration, settings: EngineSettings, logger: Logger,
                inheriting previous: Engine? = nil) throws(EngineStartupError) {
        do {
            plan = ForwardingPlan.compile(configuration)
            budget = try ResourceBudget.make(plan: plan, settings: settings, maxConnections: configuration.global.maxConnections)
        } catch { throw EngineStartupError(problems: [error]) }
        var settings = settings
        settings.connectionsPerWorker = budget.connectionsPerWorker
        // UDP: one datagram per buffer, 256 per worker (16 MiB reserved, touched as used).
        if !plan.udpListeners.isEmpty && settings.datagramBufferCount == 0 { settings.datagramBufferCount = 256 }
        self.settings = settings
        self.logger = logger
        drainMs = Self.drainMs(configuration)
        ProcessSetup.ignoreSIGPIPE()
        do { try ProcessSetup.probeIOUring() } catch {
            switch error {
            case let .unavailable(cause): throw EngineStartupError(problems: [.ioUringUnavailable(cause)])
            case let .missingFeature(feature, cause): throw EngineStartupError(problems: [.ioUringFeatureMissing(feature: feature, cause)])
            }
        }

        let kept = previous.map { Set($0.socketKeys.first ?? []) } ?? []
        let problems = Self.probePorts(plan, keeping: kept)
        guard problems.isEmpty else { throw EngineStartupError(problems: problems) }
        let rules = plan.ruleNames.count
        workerCounters = (0..<settings.workers).map { _ in WorkerCounters(rules: rules) }
        health = TargetHealth(endpoints: plan.endpoints.count)
        if let previous { health.adopt(from: previous.health, mapping: Self.sameTargets(plan, previous.plan)) }
        flowBudget = UDPFlowBudget(caps: plan.ruleUDPMaxFlows)
        if plan.names.isEmpty {
            resolver = nil
        } else {
            do {
                resolver = try Resolver(names: plan.names, nameRules: plan.nameRules, workers: settings.workers,
                                        settings: ResolverSettings(servers: settings.dnsServers), logger: logger)
            } catch { throw EngineStartupError(problems: [.resolver(error.description)]) }
        }
        do {
            for index in 0..<settings.workers { try makeSetup(index, inheriting: previous) }
        } catch {
            closeAll()
            throw EngineStartupError(problems: [error])
        }
    }

    /// Binds each listen port once without SO_REUSEPORT: with it, a second forwarder
    /// run by the same user would silently share the port instead of failing.
    /// `shutdown_drain_secs` in milliseconds (at most a year, validated: no overflow).
    public static func drainMs(_ configuration: Configuration) -> Int {
        let drain = configuration.global.shutdownDrain.components
        return Int(drain.seconds) * 1000 + Int(drain.attoseconds / 1_000_000_000_000_000)
    }

    /// Ports in `kept` are held by the engine a reload replaces, and not probed.
    private static func probePorts(_ plan: ForwardingPlan, keeping kept: Set<SocketKey>) -> [EngineError] {
        var problems: [EngineError] = []
        for (listener, udp) in plan.listeners.map({ ($0, false) }) + plan.udpListeners.map({ ($0, true) }) {
            for family in [SocketAddress.Family.ipv4, .ipv6] {
                if kept.contains(SocketKey(udp: udp, port: listener.port, ipv6: family == .ipv6)) { continue }
                do {
                    let fd = udp ? try Sockets.datagramListener(family, port: listener.port, reusePort: false)
                        : try Sockets.listener(family, port: listener.port, reusePort: false, backlog: 1)
                    Sockets.close(fd)
                } catch {
                    if ipv6Unavailable(family, error) { continue }
                    problems.append(bindError(plan, listener, error))
                    break
                }
            }
        }
        return problems
    }

    /// A host without IPv6 (disabled, or no ::) still serves IPv4: skip that socket.
    private static func ipv6Unavailable(_ family: SocketAddress.Family, _ error: SystemError) -> Bool {
        family == .ipv6 && (error.errno == EAFNOSUPPORT || error.errno == EADDRNOTAVAIL)
    }

    private static func bindError(_ plan: ForwardingPlan, _ listener: ForwardingPlan.Listener, _ error: SystemError) -> EngineError {
        let code = switch error.errno {
        case EADDRINUSE: "port_in_use"
        case EACCES, EPERM: "permission_denied"
        default: "bind_failed"
        }
        return .bind(rule: plan.ruleNames[listener.rule], port: listener.port, code: code, error)
    }

    /// Pairs each endpoint of `plan` with the endpoint of `previous` that is the same
    /// target of the same rule on the same listen port and protocol.
    private static func sameTargets(_ plan: ForwardingPlan, _ previous: ForwardingPlan) -> [(to: Int, from: Int)] {
        func keys(_ plan: ForwardingPlan) -> [(key: String, endpoint: Int)] {
            (plan.listeners.map { ($0, "tcp") } + plan.udpListeners.map { ($0, "udp") }).flatMap { listener, proto in
                listener.endpoints.map { ("\(plan.ruleNames[listener.rule])\u{0}\(proto)\u{0}\(listener.port)\u{0}\(plan.endpointLabels[$0])", $0) }
            }
        }
        let old = Dictionary(keys(previous), uniquingKeysWith: { first, _ in first })
        return keys(plan).compactMap { key, endpoint in old[key].map { (endpoint, $0) } }
    }

    /// Worker `index`'s sockets: a duplicate of `previous`'s worker `index` socket for a
    /// port both listen on, a new SO_REUSEPORT socket otherwise.
    private func makeSetup(_ index: Int, inheriting previous: Engine?) throws(EngineError) {
        var inherited: [SocketKey: Int32] = [:]
        if let previous, index < previous.setups.count {
            let old = previous.setups[index]
            for (key, fd) in zip(previous.socketKeys[index], old.listenerFDs + old.udpListenerFDs) { inherited[key] = fd }
        }
        var fds: [Int32] = [], planIndex: [Int] = [], tcpKeys: [SocketKey] = []
        var udpFDs: [Int32] = [], udpPlanIndex: [Int] = [], udpKeys: [SocketKey] = []
        for (udp, listeners) in [(false, plan.listeners), (true, plan.udpListeners)] {
            for (i, listener) in listeners.enumerated() {
                for family in [SocketAddress.Family.ipv4, .ipv6] {
                    let key = SocketKey(udp: udp, port: listener.port, ipv6: family == .ipv6)
                    do {
                        let fd: Int32
                        if let shared = inherited[key] {
                            fd = try Sockets.duplicate(shared)
                        } else if udp {
                            fd = try Sockets.datagramListener(family, port: listener.port, reusePort: true)
                        } else {
                            fd = try Sockets.listener(family, port: listener.port, reusePort: true, backlog: settings.backlog)
                        }
                        if udp {
                            udpFDs.append(fd); udpPlanIndex.append(i); udpKeys.append(key)
                        } else {
                            fds.append(fd); planIndex.append(i); tcpKeys.append(key)
                        }
                    } catch {
                        if Self.ipv6Unavailable(family, error) { continue }
                        for fd in fds + udpFDs { Sockets.close(fd) }
                        throw Self.bindError(plan, listener, error)
                    }
                }
            }
        }
        let wake: Int32
        do { wake = try EventFD.make() } catch {
            for fd in fds + udpFDs { Sockets.close(fd) }
            throw .workerSetup(worker: index, error)
        }
        setups.append(WorkerSetup(index: index, plan: plan, settings: settings, connections: budget.connectionsPerWorker, listenerFDs: fds,
                                  listenerPlanIndex: planIndex, wakeFD: wake, counters: workerCounters[index], logger: logger, health: health,
                                  resolver: resolver, udpListenerFDs: udpFDs, udpListenerPlanIndex: udpPlanIndex, flowBudget: flowBudget,
                                  control: control))
        socketKeys.append(tcpKeys + udpKeys)
    }

    private func closeAll() {
        for setup in setups {
            for fd in setup.listenerFDs + setup.udpListenerFDs { Sockets.close(fd) }
            Sockets.close(setup.wakeFD)
        }
        setups.removeAll()
        socketKeys.removeAll()
    }

    /// Starts every worker and returns once all rings are up, or throws if any failed
    /// (the others are stopped again).
    public func start() throws(EngineStartupError) {
        resolver?.start()
        let latch = StartupLatch<EngineError>(count: setups.count)
        let drainMs = drainMs
        for setup in setups {
            threads.append(spawnThread { [ended] in
                defer { ended.count.add(1, ordering: .releasing) }
                let worker: Worker<KernelIO>
                do throws(SystemError) {
                    let io = try KernelIO(settings: setup.settings) { message, error in
                        setup.logger.warning("\(message)", metadata: ["event": "standalone.worker_degraded", "error": "\(error)"])
                    }
                    worker = try Worker(setup, io: io, drainMs: drainMs)
                } catch {
                    for fd in setup.listenerFDs + setup.udpListenerFDs { Sockets.close(fd) }
                    latch.arrive(.workerSetup(worker: setup.index, error))
                    return
                }
                latch.arrive()
                // Given up (another worker failed): its listen sockets are closed
                // without an accept ever armed on them.
                guard latch.awaitDecision() else { worker.finish(); return }
                worker.run()
            })
        }
        let failures = latch.wait()
        latch.decide(failures.isEmpty)
        if !failures.isEmpty {
            wait()
            throw EngineStartupError(problems: failures)
        }
    }

    /// Asks every worker to stop accepting and to drain, within `drainMs` (default: the
    /// engine's configuration's budget). Safe to call more than once, and after `retire`.
    public func stop(drainMs: Int? = nil) {
        control.requestStop(drainMs: drainMs)
        for setup in setups { EventFD.signal(setup.wakeFD) }
    }

    /// Stops, and resets every connection at once.
    public func cut() {
        control.requestCut()
        for setup in setups { EventFD.signal(setup.wakeFD) }
    }

    /// A reload put `successor` on the listen sockets: every worker stops accepting and
    /// keeps its connections; when the drain budget (`successor`'s) is spent, it cuts
    /// those on ports `successor` does not listen on. Call after `successor.start()`.
    public func retire(for successor: Engine) {
        let kept = Set(successor.plan.listeners.map(\.port))
        control.requestRetire(droppedListeners: plan.listeners.map { !kept.contains($0.port) }, drainMs: successor.drainMs)
        for setup in setups { EventFD.signal(setup.wakeFD) }
    }

    /// `stop()` was called.
    public var isStopping: Bool { control.stopRequested }

    /// Every worker thread has ended (`wait()` then returns at once). Any thread.
    public var hasEnded: Bool { ended.count.load(ordering: .acquiring) == settings.workers }


    /// Waits until every worker has ended, then releases the wake-up fds.
    public func wait() {
        for thread in threads { pthread_join(thread, nil) }
        threads.removeAll()
        resolver?.stop()
        for setup in setups { Sockets.close(setup.wakeFD) }
        setups.removeAll()
        socketKeys.removeAll()
    }

    /// Per-rule counters summed over the workers, in rule order.
    public func counters() -> [RuleCounters] {
        (0..<plan.ruleNames.count).map { rule in
            var totals = RuleCounters()
            for worker in workerCounters { worker.add(into: &totals, rule: rule) }
            return totals
        }
    }

    /// The DNS resolver's counts (cache, lookups, failures); nil when no target is named
    /// by DNS. Relaxed atomic loads: safe from any thread, no lock.
    public func resolverFigures() -> ResolverFigures? {
        resolver?.figures()
    }

    /// Per endpoint (a rule's target at one port, in plan order): its rule (an index into
    /// `plan.ruleNames`), its label as written (`host:port`) and whether it is Healthy.
    /// One relaxed atomic load per endpoint: safe from any thread, no lock.
    public func targetStates() -> [(rule: Int, target: String, healthy: Bool)] {
        var states: [(rule: Int, target: String, healthy: Bool)] = []
        states.reserveCapacity(plan.endpointLabels.count)
        for listener in plan.listeners + plan.udpListeners {
            for endpoint in listener.endpoints {
                states.append((listener.rule, plan.endpointLabels[endpoint], !health.isFailed(endpoint)))
            }
        }
        return states
    }

    /// The IPv4 and IPv6 listen ports, for logs and tests.
    public var listenPorts: [(rule: String, port: UInt16)] {
        plan.listeners.map { (plan.ruleNames[$0.rule], $0.port) }
    }
}

/// How many of an engine's worker threads have ended (each adds one as it returns).
private final class EndedThreads: Sendable {
    let count = Atomic<Int>(0)
}
