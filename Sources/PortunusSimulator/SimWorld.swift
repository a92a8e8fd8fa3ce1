import Glibc
import Logging
@_spi(Simulation) import PortunusEngine
import PortunusConfig
import PortunusProxyProtocol
import PortunusRing

/// How often each fault strikes in one seed's run; drawn from the seed, so some seeds
/// are gentle and some harsh.
struct FaultProfile {
    var shortIO = 0.0
    var noBuffers = 0.0
    var multishotEnds = 0.0
    var cancelLoses = 0.0
    var socketFailure = 0.0
    var pipeFailure = 0.0
    var refuse = 0.0
    var blackhole = 0.0
    var appReset = 0.0
    var slowReader = 0.0

    static func draw(_ r: inout SimRandom) -> FaultProfile {
        func p(_ max: Double) -> Double { r.chance(0.3) ? 0 : Double(r.int(0...1000)) / 1000 * max }
        return FaultProfile(shortIO: p(0.5), noBuffers: p(0.1), multishotEnds: p(0.1), cancelLoses: p(0.5),
                            socketFailure: p(0.02), pipeFailure: p(0.1), refuse: p(0.2), blackhole: p(0.05),
                            appReset: p(0.3), slowReader: p(0.3))
    }
}

/// One seed's world: the configuration, the simulated kernel, the clients and backends,
/// and the checks. `run()` drives a real `Worker` against it to the end.
final class SimWorld {
    let seed: UInt64
    var random: SimRandom
    let faults: FaultProfile
    var now: Int64 = 0
    private(set) var failure: String?
    var kernel: SimKernel!
    var apps: [SimApp] = []
    /// Apps with something to do, apps pausing their reads, and how many have finished.
    var dirtyApps: [SimApp] = []
    var pausedApps: [SimApp] = []
    var finishedApps = 0
    private var allFinished: Bool { finishedApps == apps.count }
    /// Clients by id, and the backend that served each (once its header arrived).
    var clients: [SimApp] = []
    var backendOf: [Int: SimApp] = [:]
    var uploadSizes: [Int] = []
    var downloadSizes: [Int] = []
    var clientStart: [Int64] = []
    var clientListener: [Int] = []
    var started = 0
    var listenerFDs: [Int32] = []
    var listeners: [SimListener] = []
    var plan: ForwardingPlan!
    var endpointOutcome: [ConnectOutcome] = []
    var idleTimeouts = false
    var upstreamPort: UInt16 = 40000
    var stopAt: Int64 = .max
    var stopped = false
    /// A reload: at `retireAt` the worker is retired, its listeners flagged in `dropped`
    /// being the ports the new configuration left out.
    var retireAt: Int64 = .max
    var retired = false
    var dropped: [Bool] = []
    /// `accept_proxy` on every rule: each client starts with a PROXY header (v1 or v2,
    /// naming a client port of its own), or, for `badHeader` ones, with bytes that are
    /// not one.
    var acceptProxy = false
    var preambles: [[UInt8]] = []
    var badHeader: [Bool] = []
    /// Payload bytes the worker delivered per rule, up and down (the counters' truth).
    var deliveredUp: [UInt64] = []
    var deliveredDown: [UInt64] = []

    init(seed: UInt64) {
        self.seed = seed
        random = SimRandom(seed: seed)
        faults = FaultProfile.draw(&random)
    }

    /// PORTUNUS_SIM_TRACE=1 prints every completion and delivery (for replaying a seed).
    let tracing = getenv("PORTUNUS_SIM_TRACE") != nil
    func trace(_ line: @autoclosure () -> String) { if tracing { print("t=\(now) \(line())") } }

    func fail(_ message: String) {
        if failure == nil { failure = "t=\(now) ms: \(message)" }
    }

    // MARK: set-up

    /// A config of 1–3 rules with 1–3 targets each, some sending a PROXY header.
    private func makeConfig() -> String {
        var text = "[global]\nshutdown_drain_secs = 1\n"
        idleTimeouts = random.chance(0.2)
        acceptProxy = random.chance(0.25)
        for rule in 0..<random.int(1...3) {
            text += "[[rule]]\nname = \"r\(rule)\"\nprotocol = \"tcp\"\nlisten_port = \(10000 + rule)\n"
            if idleTimeouts { text += "idle_timeout_secs = \(random.int(1...3))\n" }
            if acceptProxy { text += "accept_proxy = \"any\"\naccept_proxy_timeout_secs = \(random.int(1...3))\n" }
            let targets = (0..<random.int(1...3)).map { i -> String in
                let proxy = random.chance(0.3) ? (random.chance(0.5) ? ", proxy_protocol = \"v1\"" : ", proxy_protocol = \"v2\"") : ""
                return "{ host = \"127.0.0.\(rule + 1)\", port = \(20000 + i), priority = \(random.int(0...3))\(proxy) }"
            }
            text += "targets = [ \(targets.joined(separator: ", ")) ]\n"
        }
        return text
    }

    /// Runs the seed to its end; the first violated invariant, or nil.
    func run() -> String? {
        let configuration: Configuration
        do { configuration = try ConfigLoader.parse(makeConfig()) } catch { return "config: \(error)" }
        plan = ForwardingPlan.compile(configuration)
        let relay = [RelayMode.buffers, .splice, .auto][random.int(0...2)]
        let bufferCount = 1 << random.int(2...5)
        let bufferSize = random.int(64...2048)
        let settings = EngineSettings(workers: 1, relay: relay, connectTimeoutMs: 3000, preludeTimeoutMs: random.int(50...10_000),
                                      connectionsPerWorker: random.int(4...96), bufferCount: bufferCount, bufferSize: bufferSize,
                                      pipeSize: random.int(64...4096), spliceAfterFullBuffers: random.int(1...4),
                                      pipeLimit: random.int(1...16))
        kernel = SimKernel(world: self, bufferCount: bufferCount, bufferSize: bufferSize)
        let rules = plan.ruleNames.count
        deliveredUp = [UInt64](repeating: 0, count: rules)
        deliveredDown = [UInt64](repeating: 0, count: rules)
        for port in plan.listenerPorts {
            let listener = SimListener(port: port)
            listeners.append(listener)
            listenerFDs.append(kernel.allocate(.listener(listener)))
        }
        let wake = kernel.allocate(.wake)
        endpointOutcome = plan.endpointSendsPrelude.indices.map { _ in
            random.chance(0.1) ? .refuse : random.chance(0.05) ? .blackhole : .accept
        }
        let counters = WorkerCounters(rules: rules)
        var logger = Logger(label: "sim")
        logger.logLevel = .critical
        let control = WorkerControl()
        let setup = WorkerSetup(index: 0, plan: plan, settings: settings, connections: settings.connectionsPerWorker!,
                                listenerFDs: listenerFDs, listenerPlanIndex: Array(listenerFDs.indices), wakeFD: wake,
                                counters: counters, logger: logger, control: control)
        let worker: Worker<SimKernel>
        do { worker = try Worker(setup, io: kernel, drainMs: random.int(0...2000)) } catch { return "worker: \(error)" }

        let count = random.int(20...160)
        for _ in 0..<count {
            uploadSizes.append(random.int(8...4096))
            downloadSizes.append(random.chance(0.1) ? 0 : random.int(1...8192))
            clientStart.append(Int64(random.int(0...3000)))
            clientListener.append(random.int(0...(listeners.count - 1)))
        }
        clientStart.sort()
        for id in 0..<count {
            let bad = acceptProxy && random.chance(0.1)
            badHeader.append(bad)
            preambles.append(acceptProxy ? (bad ? Array("GET / HTTP/1.1\r\n\r\n".utf8) : proxyHeader(id, v2: random.chance(0.5))) : [])
        }
        if random.chance(0.3) { stopAt = Int64(random.int(0...4000)) }
        if random.chance(0.3) {
            retireAt = Int64(random.int(0...3000))
            dropped = listeners.map { _ in random.chance(0.5) }
        }

        worker.arm()
        var steps = 0
        while !worker.isFinished {
            steps += 1
            if steps > 2_000_000 || now > 600_000 { fail("the worker did not finish (\(steps) steps, \(now) ms)"); break }
            worker.step()
            checkBuffers()
            if failure != nil { break }
            if !retired && !stopped && now >= retireAt {
                retired = true
                control.requestRetire(droppedListeners: dropped)
                kernel.wakeSignalled = true
            }
            if !stopped && (now >= stopAt || (started == count && allFinished)) {
                stopped = true
                control.requestStop()
                kernel.wakeSignalled = true
            }
        }
        if failure == nil { worker.finish() }
        // A retirement's drain cuts only connections on the ports the reload dropped.
        for listener in worker.retirementCuts where !dropped[Int(listener)] {
            fail("a retirement cut a connection on listener \(listener), whose port the reload kept")
        }
        // The apps read what the worker's last closes left them.
        for _ in 0..<1000 where apps.contains(where: { app in
            app.readPausedUntil = 0
            return !app.finished && app.act()
        }) {}
        if failure == nil { finalChecks(counters) }
        for app in apps { app.socket.peer = nil }
        return failure
    }

    // MARK: the world turning

    /// Called inside `submitAndWait`: let the ring and the apps move until a completion
    /// is ready, advancing the clock when nothing else can happen.
    func runUntilCompletion() {
        var spins = 0
        while kernel.ready.isEmpty {
            spins += 1
            if spins > 100_000 { fail("no progress after 100,000 turns"); return }
            startClients()
            var moved = kernel.progress()
            if !kernel.ready.isEmpty { return }
            let batch = dirtyApps
            dirtyApps.removeAll(keepingCapacity: true)
            for app in batch {
                app.dirty = false
                if app.act() { moved = true }
            }
            if moved || !dirtyApps.isEmpty { continue }
            // Readers whose pause is over read again.
            var resumed = false
            pausedApps.removeAll { app in
                guard app.readPausedUntil <= now || app.finished else { return false }
                if !app.finished { app.peerChanged(); resumed = true }
                return true
            }
            if resumed { continue }
            if !stopped && now >= stopAt { return }   // let the driver raise the stop
            if !retired && !stopped && now >= retireAt { return }
            if !stopped && started == clientStart.count && allFinished { return }
            let next = [kernel.nextDue, nextClientStart, nextReadResume, stopped ? .max : stopAt, retired || stopped ? .max : retireAt].min()!
            guard next != .max else {
                // Nothing will ever happen again, yet the worker waits: a lost wake-up.
                let stuck = apps.filter { !$0.finished }.prefix(3).map { app in
                    "\(app.isClient ? "client" : "backend") \(app.id.map(String.init) ?? "?") (sent \(app.sent)/\(app.toSend), read \(app.received), "
                        + "send room \(app.socket.sendRoom), inbound \(app.socket.inbound.count), eof \(app.eof), peer shut \(app.socket.peerShutWrite), "
                        + "peer closed \(app.socket.peer?.closed ?? true), peer reset \(app.socket.peer?.wasReset ?? false), "
                        + "peer inbound \(app.socket.peer?.inbound.count ?? -1), refused \(app.refused), dirty \(app.dirty), paused until \(app.readPausedUntil))"
                }
                fail("deadlock: no operation can complete and no event is due; unfinished: \(stuck.joined(separator: ", "))")
                return
            }
            now = max(now + 1, next)
        }
    }

    private var nextClientStart: Int64 { started < clientStart.count ? clientStart[started] : .max }

    private var nextReadResume: Int64 {
        pausedApps.lazy.filter { !$0.finished }.map(\.readPausedUntil).min() ?? .max
    }

    /// Clients whose time has come connect: the kernel completes the handshake and
    /// queues the connection on the listener (or refuses it once the listener is closed).
    private func startClients() {
        while started < clientStart.count && clientStart[started] <= now {
            let id = started
            started += 1
            let listener = listeners[clientListener[id]]
            let port = UInt16(1024 + id)
            let appSide = kernel.makeSocket(capacity: random.int(64...4096),
                                            address: SocketAddress(ipv4: [192, 0, 2, 1], port: listener.port),
                                            local: SocketAddress(ipv4: [10, 1, UInt8(id >> 8 & 0xFF), UInt8(id & 0xFF)], port: port))
            let workerSide = kernel.makeSocket(capacity: random.int(64...4096),
                                               address: SocketAddress(ipv4: [10, 1, UInt8(id >> 8 & 0xFF), UInt8(id & 0xFF)], port: port),
                                               local: SocketAddress(ipv4: [192, 0, 2, 1], port: listener.port))
            appSide.peer = workerSide
            workerSide.peer = appSide
            let rule = plan.listenerRules[clientListener[id]]
            let app = SimApp(role: .client(id: id, rule: rule), socket: appSide, world: self, toSend: uploadSizes[id], expectsPrelude: false,
                             preamble: preambles[id])
            clients.append(app)
            apps.append(app)
            if listener.closed {
                app.refused = true
                appSide.receiveReset()
            } else {
                listener.backlog.append(workerSide)
            }
        }
    }

    func clientPort(_ id: Int) -> UInt16 { UInt16(1024 + id) }
    /// The client port a client's inbound PROXY header names.
    func proxiedPort(_ id: Int) -> UInt16 { UInt16(40000 + id) }
    /// The port a backend must see as the client's in its PROXY header.
    func announcedPort(_ id: Int) -> UInt16 { acceptProxy ? proxiedPort(id) : clientPort(id) }

    /// A valid inbound PROXY header for client `id` (the load balancer in front's).
    private func proxyHeader(_ id: Int, v2: Bool) -> [UInt8] {
        let source = ProxyAddress(ipv4: (198, 51, 100, UInt8(id % 250 + 1)), port: proxiedPort(id))
        let destination = ProxyAddress(ipv4: (192, 0, 2, 1), port: 443)
        let encoded = v2 ? ProxyHeader.encodeV2(source: source, destination: destination, tlvs: [.authority("sim.example")])
                         : ProxyHeader.encodeV1(source: source, destination: destination)
        return (try? encoded.get()) ?? []
    }
    func downloadSize(_ id: Int) -> Int { downloadSizes[id] }

    func upstreamLocalAddress() -> SocketAddress {
        upstreamPort &+= 1
        return SocketAddress(ipv4: [127, 0, 0, 1], port: upstreamPort)
    }

    func connectOutcome(endpoint: Int) -> ConnectOutcome {
        if random.chance(faults.refuse) { return .refuse }
        if random.chance(faults.blackhole) { return .blackhole }
        return endpointOutcome[endpoint]
    }

    /// A backend accepted the worker's connect to `endpoint`.
    func backendAccepts(_ workerSide: SimSocket, endpoint: Int) {
        let backendSide = kernel.makeSocket(capacity: random.int(64...4096), address: workerSide.local, local: workerSide.address)
        backendSide.peer = workerSide
        workerSide.peer = backendSide
        let listener = plan.listenerEndpoints.firstIndex { $0.contains(endpoint) }!
        let app = SimApp(role: .backend(endpoint: endpoint, rule: plan.listenerRules[listener]), socket: backendSide, world: self,
                         toSend: 0, expectsPrelude: plan.endpointSendsPrelude[endpoint])
        apps.append(app)
    }

    func pair(backend: SimApp, client: Int) {
        if backendOf[client] != nil { fail("client \(client)'s upload reached two backends") }
        if badHeader[client] { fail("client \(client), whose PROXY header was not one, reached a backend") }
        backendOf[client] = backend
    }

    /// Bytes a worker send or splice put into `peer`'s receive queue (`payload`: not a
    /// PROXY header, so counted as relayed).
    func delivered(_ bytes: [UInt8], to peer: SimSocket, payload: Bool) {
        peer.inbound.append(bytes)
        peer.app?.peerChanged()
        trace("deliver \(bytes.count) bytes to \(peer.app.map { $0.isClient ? "client \($0.id ?? -1)" : "backend \($0.id ?? -1)" } ?? "?") payload \(payload)")
        guard payload, let app = peer.app else { return }
        switch app.role {
        case let .client(_, rule): deliveredDown[rule] += UInt64(bytes.count)
        case let .backend(_, rule): deliveredUp[rule] += UInt64(bytes.count)
        }
    }

    /// Bytes an app wrote to its socket land in the worker's endpoint.
    func appSends(_ bytes: [UInt8], from socket: SimSocket) {
        guard let peer = socket.peer, !peer.closed else { return }
        peer.inbound.append(bytes)
    }

    // MARK: checks

    /// After every step: the buffers the worker believes it holds are those the kernel handed it.
    private func checkBuffers() {
        let handed = kernel.buffers.heldByWorker.lazy.filter { $0 }.count
        if handed != kernel.buffers.heldCount {
            fail("the kernel handed out \(handed) buffers, the worker records \(kernel.buffers.heldCount)")
        }
    }

    private func finalChecks(_ counters: WorkerCounters) {
        if kernel.buffers.heldCount != 0 || kernel.buffers.ring.count != kernel.buffers.count {
            fail("after the run \(kernel.buffers.heldCount) buffers are still held, \(kernel.buffers.ring.count) of \(kernel.buffers.count) in the ring")
        }
        for (fd, file) in kernel.files.entries {
            if case .wake = file { continue }
            fail("fd \(fd) left open after the run: \(file)")
        }
        for p in kernel.pending where !p.done {
            switch p.op {
            case .timeout, .linkTimeout: continue
            // A retired worker keeps its wake-up poll armed; the ring's teardown drops it.
            case let .poll(fd, _) where { if case .wake? = kernel.files[fd] { return true } else { return false } }(): continue
            default: fail("operation \(p.op) still pending after the run")
            }
        }
        for rule in plan.ruleNames.indices {
            var c = RuleCounters()
            counters.add(into: &c, rule: rule)
            if c.bytesIn != deliveredUp[rule] {
                fail("rule \(rule): bytes_in is \(c.bytesIn), the backends got \(deliveredUp[rule]) payload bytes")
            }
            if c.bytesOut != deliveredDown[rule] {
                fail("rule \(rule): bytes_out is \(c.bytesOut), the clients got \(deliveredDown[rule])")
            }
            if c.connectionsActive != 0 { fail("rule \(rule): conns_active is \(c.connectionsActive) after the run") }
        }
        // Only a bad or unfinished header is refused: without a stop or a reload (which
        // cut slow readers), every client that sent its whole good header and did not
        // reset itself was read and served.
        if acceptProxy && stopAt == .max && retireAt == .max {
            var refused: UInt64 = 0
            for rule in plan.ruleNames.indices {
                var c = RuleCounters()
                counters.add(into: &c, rule: rule)
                refused += c.proxyInRejected
            }
            let allowed = clients.filter { badHeader[$0.id!] || $0.resetBySelf || $0.sent < $0.preamble.count }.count
            if refused > UInt64(allowed) {
                fail("\(refused) PROXY headers refused, but only \(allowed) clients sent a bad or unfinished one")
            }
        }
        // A connection nobody reset, refused or cut (no idle timeout, no drain, no
        // failed dial) delivered everything both ways.
        guard !idleTimeouts else { return }
        for client in clients where client.finished && !client.resetBySelf && !client.resetByPeer && !client.refused {
            let id = client.id!
            guard let backend = backendOf[id], backend.finished, !backend.resetBySelf, !backend.resetByPeer else { continue }
            if client.received != downloadSizes[id] { fail("client \(id) got \(client.received) of \(downloadSizes[id]) bytes") }
            if backend.received != uploadSizes[id] { fail("the backend of client \(id) got \(backend.received) of \(uploadSizes[id]) bytes") }
        }
    }
}
