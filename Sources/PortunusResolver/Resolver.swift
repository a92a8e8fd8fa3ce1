import CCares
import Glibc
import Logging
import Synchronization

/// Why the resolver could not start.
public struct ResolverError: Error, Sendable, CustomStringConvertible {
    public let description: String
}

/// What the resolver has done since it started (the metrics endpoint's DNS figures).
public struct ResolverFigures: Sendable, Equatable {
    /// DNS names in the configuration (the names the resolver serves).
    public var names: Int
    /// Names holding answers now (at most the cache capacity).
    public var cachedNames: UInt64
    /// Requests from workers answered from the cache at once (fresh answers, or a name
    /// that failed a moment ago), without a lookup.
    public var cacheAnswers: UInt64
    /// Lookups begun: requests the cache could not answer.
    public var lookups: UInt64
    /// Lookups that ended without an answer (server error, no record, deadline).
    public var lookupFailures: UInt64

    public init(names: Int, cachedNames: UInt64, cacheAnswers: UInt64, lookups: UInt64, lookupFailures: UInt64) {
        self.names = names
        self.cachedNames = cachedNames
        self.cacheAnswers = cacheAnswers
        self.lookups = lookups
        self.lookupFailures = lookupFailures
    }
}

/// DNS resolution for the workers, on a thread of its own with c-ares, so that no ring
/// ever waits on DNS (SPEC.md §6).
///
/// The names are the config's, known up front and numbered; the cache holds per name the
/// last answers and when they expire. A worker asks with ``request(name:worker:)`` when
/// its own copy is stale; the answer (or the cached state, at once when it is fresh or
/// recently failed) is posted to that worker's ``ResolverMailbox``, whose eventfd the
/// worker's ring polls. One lookup runs per name however many workers and connections
/// wait for it; at most `maxInFlight` run at once.
public final class Resolver: @unchecked Sendable {
    // @unchecked: `requests` and the mailboxes are the only state shared between threads
    // (each behind a Mutex); everything else is touched only by the resolver thread, or
    // before it starts and after it is joined.
    public let settings: ResolverSettings
    public let names: [String]
    public let mailboxes: [ResolverMailbox]
    /// Per name, the rule(s) that use it, for logs.
    private let nameRules: [String]
    private let logger: Logger
    private let requests = Mutex<[(name: Int, worker: Int)]>([])
    private let wakeFD: Int32
    private let stopping = Atomic<Bool>(false)
    private var thread: pthread_t?
    /// ``figures()``: written by the resolver thread only, read by any thread (relaxed:
    /// each is a count on its own, no reader needs them consistent with each other).
    private let cachedNamesFigure = Atomic<UInt64>(0)
    private let cacheAnswersFigure = Atomic<UInt64>(0)
    private let lookupsFigure = Atomic<UInt64>(0)
    private let lookupFailuresFigure = Atomic<UInt64>(0)

    // Resolver thread only.
    private var channel: OpaquePointer?
    private var entries: [Entry]
    /// Names with a lookup counted against its deadline (running or queued).
    private var pending: [Int] = []
    /// Names waiting for a free lookup slot, oldest first.
    private var queue: [Int] = []
    /// c-ares lookups not yet called back (abandoned ones included: they still hold a slot).
    private var aresInFlight = 0
    /// Names holding answers.
    private var cachedCount = 0

    private struct Entry {
        var addresses: [ResolvedAddress] = []
        var ipv4Count = 0
        var freshUntilMs: Int64 = 0
        var failed = false
        var retryAtMs: Int64 = 0
        enum Lookup { case none, queued, running }
        var lookup = Lookup.none
        var deadlineMs: Int64 = 0
        /// Bumped when a c-ares query of the name starts: a callback for an older one is ignored.
        var generation: UInt32 = 0
        /// The name's latest c-ares query has not called back yet. A lookup whose deadline
        /// failed it leaves its query out; the next lookup of the name adopts that query
        /// instead of starting another, so a name never has two queries out.
        var outstanding = false
        var waiters: [Int] = []
        var lastAskedMs: Int64 = 0
        var lastFailureLogMs: Int64? = nil
        var suppressedFailureLogs = 0
    }

    /// A resolver for `names` (`nameRules[i]`: the rules using name i, for logs), posting
    /// answers to one mailbox per worker.
    public init(names: [String], nameRules: [String], workers: Int, settings: ResolverSettings, logger: Logger) throws(ResolverError) {
        precondition(names.count == nameRules.count)
        self.settings = settings
        self.names = names
        self.nameRules = nameRules
        self.logger = logger
        entries = Array(repeating: Entry(), count: names.count)
        var boxes: [ResolverMailbox] = []
        for _ in 0..<workers {
            let fd = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
            if fd < 0 {
                for box in boxes { Glibc.close(box.fd) }
                throw ResolverError(description: "eventfd: \(String(cString: strerror(errno)))")
            }
            boxes.append(ResolverMailbox(fd: fd))
        }
        mailboxes = boxes
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard wakeFD >= 0 else {
            for box in boxes { Glibc.close(box.fd) }
            throw ResolverError(description: "eventfd: \(String(cString: strerror(errno)))")
        }
        do { try openChannel() } catch {
            for box in boxes { Glibc.close(box.fd) }
            Glibc.close(wakeFD)
            throw error
        }
    }

    deinit {
        if let channel { ares_destroy(channel) }
        for box in mailboxes { Glibc.close(box.fd) }
        Glibc.close(wakeFD)
    }

    private func openChannel() throws(ResolverError) {
        let status = ares_library_init(ARES_LIB_INIT_ALL)
        guard status == ARES_SUCCESS else { throw ResolverError(description: "c-ares: \(String(cString: ares_strerror(status)))") }
        // c-ares tries every server `tries` times, doubling the wait each round: with n
        // servers, two rounds take 3 × n × timeout. The timeout is chosen so a query ends
        // with the lookup's deadline and does not hold its in-flight slot long past it.
        let servers = settings.servers.isEmpty ? try Self.resolvConfServerCount() : settings.servers.count
        var options = ares_options()
        options.timeout = Int32(max(200, settings.lookupTimeoutMs / Int64(3 * max(servers, 1))))
        options.tries = 2
        channel = try Self.channel(options, servers: settings.servers)
    }

    private static func channel(_ options: ares_options?, servers: [DNSServer]) throws(ResolverError) -> OpaquePointer {
        var channel: OpaquePointer?
        var copy = options ?? ares_options()
        let status = ares_init_options(&channel, &copy, options == nil ? 0 : ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES)
        guard status == ARES_SUCCESS, let channel else {
            throw ResolverError(description: "c-ares: cannot initialise the resolver: \(String(cString: ares_strerror(status)))")
        }
        guard !servers.isEmpty else { return channel }
        let list = servers.map(\.description).joined(separator: ",")
        let serverStatus = ares_set_servers_ports_csv(channel, list)
        guard serverStatus == ARES_SUCCESS else {
            ares_destroy(channel)
            throw ResolverError(description: "c-ares: cannot use the DNS servers \(list): \(String(cString: ares_strerror(serverStatus)))")
        }
        return channel
    }

    /// How many servers /etc/resolv.conf gives c-ares.
    private static func resolvConfServerCount() throws(ResolverError) -> Int {
        let probe = try channel(nil, servers: [])
        defer { ares_destroy(probe) }
        var servers: UnsafeMutablePointer<ares_addr_port_node>?
        guard ares_get_servers_ports(probe, &servers) == ARES_SUCCESS else { return 1 }
        defer { ares_free_data(servers) }
        var count = 0
        var node = servers
        while let current = node { count += 1; node = current.pointee.next }
        return count
    }

    // MARK: any thread

    /// Starts the resolver thread.
    public func start() {
        let box = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            let resolver = Unmanaged<Resolver>.fromOpaque(raw!).takeRetainedValue()
            resolver.run()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        self.thread = thread
    }

    /// Stops the resolver thread and waits for it. Lookups in flight are dropped.
    public func stop() {
        stopping.store(true, ordering: .releasing)
        signal(wakeFD)
        if let thread { pthread_join(thread, nil) }
        thread = nil
    }

    /// The resolver's counts so far: relaxed atomic loads, no lock, from any thread.
    public func figures() -> ResolverFigures {
        ResolverFigures(names: names.count, cachedNames: cachedNamesFigure.load(ordering: .relaxed),
                        cacheAnswers: cacheAnswersFigure.load(ordering: .relaxed),
                        lookups: lookupsFigure.load(ordering: .relaxed),
                        lookupFailures: lookupFailuresFigure.load(ordering: .relaxed))
    }

    /// Asks for name `name` on behalf of `worker`: the answer goes to that worker's
    /// mailbox, at once if the cache can give it, else when the lookup ends (within
    /// `lookupTimeoutMs`).
    public func request(name: Int, worker: Int) {
        requests.withLock { $0.append((name, worker)) }
        signal(wakeFD)
    }

    private func signal(_ fd: Int32) {
        var one: UInt64 = 1
        while write(fd, &one, 8) < 0 && errno == EINTR {}
    }

    // MARK: resolver thread

    private func run() {
        var polls = [pollfd](repeating: pollfd(), count: 1 + Int(ARES_GETSOCK_MAXNUM))
        var sockets = [ares_socket_t](repeating: -1, count: Int(ARES_GETSOCK_MAXNUM))
        var taken: [(name: Int, worker: Int)] = []
        while !stopping.load(ordering: .acquiring) {
            expireDeadlines(Clock.nowMs())
            startQueued(Clock.nowMs())
            polls[0] = pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)
            var count = 1
            let bits = ares_getsock(channel, &sockets, ARES_GETSOCK_MAXNUM)
            for i in 0..<Int(ARES_GETSOCK_MAXNUM) {
                let readable = portunus_ares_getsock_readable(bits, Int32(i)) != 0
                let writable = portunus_ares_getsock_writable(bits, Int32(i)) != 0
                guard readable || writable else { continue }
                polls[count] = pollfd(fd: sockets[i], events: Int16((readable ? POLLIN : 0) | (writable ? POLLOUT : 0)), revents: 0)
                count += 1
            }
            poll(&polls, nfds_t(count), pollTimeoutMs(Clock.nowMs()))
            if polls[0].revents != 0 {
                var value: UInt64 = 0
                while read(wakeFD, &value, 8) < 0 && errno == EINTR {}
            }
            requests.withLock { swap(&$0, &taken) }
            let now = Clock.nowMs()
            for request in taken { handle(request.name, worker: request.worker, now) }
            taken.removeAll(keepingCapacity: true)
            for i in 1..<count where polls[i].revents != 0 {
                let readable = polls[i].revents & Int16(POLLIN | POLLERR | POLLHUP) != 0
                let writable = polls[i].revents & Int16(POLLOUT) != 0
                ares_process_fd(channel, readable ? polls[i].fd : ARES_SOCKET_BAD, writable ? polls[i].fd : ARES_SOCKET_BAD)
            }
            // Retransmits and c-ares's own timeouts.
            ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD)
        }
        // Calls back every lookup still in flight with ARES_ECANCELLED, which frees
        // their contexts; the callbacks change nothing else now.
        ares_cancel(channel)
    }

    /// Until the next c-ares timeout or lookup deadline, at most 1 s.
    private func pollTimeoutMs(_ now: Int64) -> Int32 {
        var limit = timeval(tv_sec: 1, tv_usec: 0)
        var next = timeval()
        let tv = ares_timeout(channel, &limit, &next)!.pointee
        var ms = Int64(tv.tv_sec) * 1000 + Int64(tv.tv_usec + 999) / 1000
        for name in pending { ms = min(ms, max(0, entries[name].deadlineMs - now)) }
        return Int32(ms)
    }

    private func handle(_ name: Int, worker: Int, _ now: Int64) {
        entries[name].lastAskedMs = now
        switch entries[name].lookup {
        case .queued, .running:
            if !entries[name].waiters.contains(worker) { entries[name].waiters.append(worker) }
            return
        case .none:
            break
        }
        // Fresh, or failed a moment ago: the cache answers.
        if now < entries[name].freshUntilMs || (entries[name].failed && now < entries[name].retryAtMs) {
            mailboxes[worker].post(answer(name))
            cacheAnswersFigure.wrappingAdd(1, ordering: .relaxed)
            return
        }
        lookupsFigure.wrappingAdd(1, ordering: .relaxed)
        entries[name].waiters.append(worker)
        entries[name].deadlineMs = now + settings.lookupTimeoutMs
        pending.append(name)
        if entries[name].outstanding {
            // The query a deadline gave up on is still out: it serves this lookup.
            entries[name].lookup = .running
            return
        }
        entries[name].lookup = .queued
        queue.append(name)
        startQueued(now)
    }

    private func startQueued(_ now: Int64) {
        while aresInFlight < settings.maxInFlight, !queue.isEmpty {
            let name = queue.removeFirst()
            entries[name].lookup = .running
            entries[name].generation &+= 1
            entries[name].outstanding = true
            aresInFlight += 1
            let context = Unmanaged.passRetained(LookupContext(self, name: name, generation: entries[name].generation)).toOpaque()
            var hints = ares_addrinfo_hints()
            hints.ai_family = AF_UNSPEC
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            // No RFC 6724 sort: it probes each address with a UDP socket. The order is ours.
            hints.ai_flags = ARES_AI_NOSORT
            ares_getaddrinfo(channel, names[name], nil, &hints, { raw, status, _, result in
                let context = Unmanaged<LookupContext>.fromOpaque(raw!).takeRetainedValue()
                context.resolver.finished(context.name, context.generation, status, result)
                if let result { ares_freeaddrinfo(result) }
            }, context)
        }
    }

    /// Lookups past their deadline fail now; the c-ares query, if running, is left to
    /// end on its own (it holds its slot until then; a later lookup of the name adopts it).
    private func expireDeadlines(_ now: Int64) {
        var i = 0
        while i < pending.count {
            let name = pending[i]
            guard entries[name].deadlineMs <= now else { i += 1; continue }
            if entries[name].lookup == .queued { queue.removeAll { $0 == name } }
            fail(name, "no answer within \(settings.lookupTimeoutMs) ms", now)
        }
    }

    fileprivate func finished(_ name: Int, _ generation: UInt32, _ status: Int32, _ result: UnsafeMutablePointer<ares_addrinfo>?) {
        aresInFlight -= 1
        guard entries[name].generation == generation else { return }
        entries[name].outstanding = false
        guard entries[name].lookup == .running, !stopping.load(ordering: .relaxed) else { return }
        let now = Clock.nowMs()
        guard status == ARES_SUCCESS, let result else {
            fail(name, String(cString: ares_strerror(status)), now)
            return
        }
        var ipv4: [ResolvedAddress] = [], ipv6: [ResolvedAddress] = []
        var ttl = Int64.max
        var node = result.pointee.nodes
        while let current = node {
            node = current.pointee.ai_next
            guard let sockaddr = current.pointee.ai_addr else { continue }
            let address: ResolvedAddress
            switch current.pointee.ai_family {
            case AF_INET:
                var sin = sockaddr_in()
                memcpy(&sin, sockaddr, MemoryLayout<sockaddr_in>.size)
                address = withUnsafeBytes(of: sin.sin_addr) { ResolvedAddress(isIPv6: false, raw: $0) }
                if ipv4.contains(address) { continue }
                ipv4.append(address)
            case AF_INET6:
                var sin6 = sockaddr_in6()
                memcpy(&sin6, sockaddr, MemoryLayout<sockaddr_in6>.size)
                address = withUnsafeBytes(of: sin6.sin6_addr) { ResolvedAddress(isIPv6: true, raw: $0) }
                if ipv6.contains(address) { continue }
                ipv6.append(address)
            default:
                continue
            }
            ttl = min(ttl, Int64(current.pointee.ai_ttl))
        }
        var cname = result.pointee.cnames
        while let current = cname {
            ttl = min(ttl, Int64(current.pointee.ttl))
            cname = current.pointee.next
        }
        guard !ipv4.isEmpty || !ipv6.isEmpty else {
            fail(name, "no A or AAAA record", now)
            return
        }
        // Each family keeps its first addresses when there are too many, IPv4 first.
        let keep4 = min(ipv4.count, max(settings.maxAddressesPerName - ipv6.count, settings.maxAddressesPerName / 2))
        let keep6 = min(ipv6.count, settings.maxAddressesPerName - keep4)
        ttl = min(max(ttl, settings.minTTLSeconds), settings.maxTTLSeconds)
        if entries[name].addresses.isEmpty { makeRoom(for: name) }
        entries[name].addresses = Array(ipv4.prefix(keep4)) + Array(ipv6.prefix(keep6))
        entries[name].ipv4Count = keep4
        entries[name].freshUntilMs = now + ttl * 1000
        entries[name].failed = false
        entries[name].retryAtMs = 0
        logger.debug("name resolved", metadata: [
            "event": "rule.dns_resolved", "rule": "\(nameRules[name])", "name": "\(names[name])", "ttl_secs": .stringConvertible(ttl),
            "addresses": "\(entries[name].addresses.map(\.description).joined(separator: ","))",
        ])
        settle(name)
    }

    private func fail(_ name: Int, _ reason: String, _ now: Int64) {
        lookupFailuresFigure.wrappingAdd(1, ordering: .relaxed)
        entries[name].failed = true
        entries[name].retryAtMs = now + settings.negativeMs
        let stale = !entries[name].addresses.isEmpty && now < entries[name].freshUntilMs + settings.staleMs
        // One warning per name per 10 s; the next one says how many were skipped.
        if entries[name].lastFailureLogMs.map({ now - $0 >= 10_000 }) ?? true {
            logger.warning("name did not resolve", metadata: [
                "event": "rule.dns_failed", "rule": "\(nameRules[name])", "name": "\(names[name])", "error": "\(reason)",
                "serving_stale": .stringConvertible(stale), "suppressed": .stringConvertible(entries[name].suppressedFailureLogs),
            ])
            entries[name].lastFailureLogMs = now
            entries[name].suppressedFailureLogs = 0
        } else {
            entries[name].suppressedFailureLogs += 1
        }
        settle(name)
    }

    /// The lookup of `name` has ended: every worker waiting for it gets the new state.
    private func settle(_ name: Int) {
        entries[name].lookup = .none
        pending.removeAll { $0 == name }
        let snapshot = answer(name)
        for worker in entries[name].waiters { mailboxes[worker].post(snapshot) }
        entries[name].waiters.removeAll()
    }

    /// Before `name` starts holding answers: if the cache is full, the least recently
    /// asked name not being looked up loses its answers, in every worker too.
    private func makeRoom(for name: Int) {
        if cachedCount >= settings.cacheCapacity {
            var victim = -1
            for i in entries.indices where i != name && !entries[i].addresses.isEmpty && entries[i].lookup == .none {
                if victim < 0 || entries[i].lastAskedMs < entries[victim].lastAskedMs { victim = i }
            }
            if victim >= 0 {
                // Its lookup bookkeeping (generation, a query still out) stays.
                entries[victim].addresses = []
                entries[victim].ipv4Count = 0
                entries[victim].freshUntilMs = 0
                entries[victim].failed = false
                entries[victim].retryAtMs = 0
                cachedCount -= 1
                cachedNamesFigure.store(UInt64(cachedCount), ordering: .relaxed)
                let evicted = answer(victim)
                for box in mailboxes { box.post(evicted) }
            }
        }
        cachedCount += 1
        cachedNamesFigure.store(UInt64(cachedCount), ordering: .relaxed)
    }

    private func answer(_ name: Int) -> NameAnswer {
        let entry = entries[name]
        return NameAnswer(name: name, addresses: entry.addresses, ipv4Count: entry.ipv4Count,
                          freshUntilMs: entry.freshUntilMs, failed: entry.failed, retryAtMs: entry.retryAtMs)
    }
}

/// One worker's inbox of answers. The resolver posts and signals `fd` (an eventfd);
/// the worker's ring polls `fd`, and the worker takes the answers.
public final class ResolverMailbox: Sendable {
    public let fd: Int32
    private let answers = Mutex<[NameAnswer]>([])

    init(fd: Int32) { self.fd = fd }

    func post(_ answer: NameAnswer) {
        answers.withLock { $0.append(answer) }
        var one: UInt64 = 1
        while write(fd, &one, 8) < 0 && errno == EINTR {}
    }

    /// Empties the eventfd and moves every posted answer into `into` (emptied first).
    public func take(into: inout [NameAnswer]) {
        var value: UInt64 = 0
        while read(fd, &value, 8) < 0 && errno == EINTR {}
        into.removeAll(keepingCapacity: true)
        answers.withLock { swap(&$0, &into) }
    }
}

private final class LookupContext {
    unowned let resolver: Resolver
    let name: Int
    let generation: UInt32
    init(_ resolver: Resolver, name: Int, generation: UInt32) {
        self.resolver = resolver
        self.name = name
        self.generation = generation
    }
}

/// The workers' clock: CLOCK_MONOTONIC_COARSE in milliseconds.
public enum Clock {
    public static func nowMs() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}
