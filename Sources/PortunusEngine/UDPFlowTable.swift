import PortunusRing
import Synchronization

/// One worker's UDP flows (SPEC.md §7): a flow per (listener, client address), each
/// with its own connected upstream socket. Records live in reserved memory touched as
/// flows are first made (like the connection slab), found through a hash table whose
/// hash is Swift's `Hasher`: SipHash with a seed random per process, so a flood of
/// spoofed sources cannot aim at one bucket and turn lookups into a long walk.
///
/// The table only keeps records; the caps are the engine's (``UDPFlowBudget``), and
/// the capacity is the most flows the worker's rules may hold, so a full rule is refused
/// by its budget before the table can fill.
final class UDPFlowTable {
    struct Flow {
        var client: SocketAddress = .loopback(.ipv4, port: 0)
        /// The local address the client wrote to (its first datagram's), which replies
        /// leave from; nil when the socket did not say (routing then chooses).
        var local: SocketAddress?
        /// Which of the worker's UDP sockets the client reached (replies leave through it).
        var listener: Int32 = -1
        var rule: Int32 = -1
        /// The flow's connected upstream socket (-1 until it is made).
        var upstream: Int32 = -1
        /// When a datagram last moved either way (the worker's coarse clock, ms).
        var lastActiveMs: Int64 = 0
        var generation: UInt32 = 0
        /// Next flow in the same bucket, + 1 (0: none); next free flow when free.
        var nextInBucket: Int32 = 0
        /// The plan endpoint the flow was made for (its target).
        var endpoint: Int32 = -1
        /// Operations of the flow submitted and not completed (its upstream recv, sends).
        var inFlight: Int32 = 0
        var inUse = false
        /// Being removed: its upstream recv is cancelled; no datagram is sent any more.
        var closing = false
    }

    let flows: ReservedArray<Flow>
    /// Bucket heads: flow index + 1 (0, the untouched memory's value: empty).
    private let buckets: ReservedArray<Int32>
    private let bucketMask: Int
    let capacity: Int
    private(set) var count = 0
    /// Flows below this index have been used at least once.
    private(set) var highWater = 0
    private var freeHead: Int32 = -1

    init(capacity: Int) throws(SystemError) {
        precondition(capacity > 0 && capacity < Int(Int32.max) / 2)
        self.capacity = capacity
        flows = try ReservedArray(capacity: capacity)
        var bucketCount = 1
        while bucketCount < capacity * 2 { bucketCount <<= 1 }
        buckets = try ReservedArray(capacity: bucketCount)
        bucketMask = bucketCount - 1
    }

    @inline(__always)
    private func bucket(_ listener: Int32, _ client: SocketAddress) -> Int {
        var hasher = Hasher()
        hasher.combine(listener)
        hasher.combine(client.port)
        hasher.combine(client.scopeID)
        client.withOctets { hasher.combine(bytes: $0) }
        return hasher.finalize() & bucketMask
    }

    /// The flow of `client` on `listener`, if there is one.
    func find(listener: Int32, client: SocketAddress) -> Int32? {
        var link = buckets[bucket(listener, client)]
        while link != 0 {
            let index = Int(link - 1)
            if flows[index].listener == listener && flows[index].client == client { return Int32(index) }
            link = flows[index].nextInBucket
        }
        return nil
    }

    /// Records a new flow (its rule's budget already reserved); nil when the table is
    /// full. The caller makes its upstream socket.
    func insert(listener: Int32, client: SocketAddress, local: SocketAddress? = nil, rule: Int32, nowMs: Int64) -> Int32? {
        let index: Int
        if freeHead >= 0 {
            index = Int(freeHead)
            freeHead = flows[index].nextInBucket
        } else if highWater < capacity {
            index = highWater
            highWater += 1
        } else {
            return nil
        }
        let head = bucket(listener, client)
        let generation = flows[index].generation
        flows[index] = Flow(client: client, local: local, listener: listener, rule: rule, upstream: -1, lastActiveMs: nowMs,
                            generation: generation, nextInBucket: buckets[head], inUse: true)
        buckets[head] = Int32(index + 1)
        count += 1
        return Int32(index)
    }

    /// Forgets flow `index` (its upstream socket already closed by the caller, and no
    /// operation of it in flight); bumps its generation.
    func remove(_ index: Int32) {
        let i = Int(index)
        precondition(flows[i].inUse, "removed a free flow")
        let head = bucket(flows[i].listener, flows[i].client)
        if buckets[head] == index + 1 {
            buckets[head] = flows[i].nextInBucket
        } else {
            var link = buckets[head]
            while flows[Int(link - 1)].nextInBucket != index + 1 { link = flows[Int(link - 1)].nextInBucket }
            flows[Int(link - 1)].nextInBucket = flows[i].nextInBucket
        }
        precondition(flows[i].inFlight == 0, "removed a flow with operations in flight")
        flows[i].inUse = false
        flows[i].closing = false
        flows[i].upstream = -1
        flows[i].generation = (flows[i].generation &+ 1) & UserData.generationMask
        flows[i].nextInBucket = freeHead
        freeHead = index
        count -= 1
    }

    /// Every flow idle (no datagram either way) for at least its rule's window, as of
    /// `nowMs`: the sweep calls this every window / 4, so a flow goes 1–1.25 × the
    /// window after its last datagram.
    func idle(nowMs: Int64, windowMs: (Int32) -> Int64) -> [Int32] {
        var expired: [Int32] = []
        for i in 0..<highWater where flows[i].inUse && !flows[i].closing && nowMs - flows[i].lastActiveMs >= windowMs(flows[i].rule) {
            expired.append(Int32(i))
        }
        return expired
    }
}

/// `udp_max_flows` per rule, across the rule's whole port range and every worker
/// (SPEC.md §7): a flow is counted from the moment it is set up until it is gone.
/// When a rule is full, a new client's datagrams are dropped and counted; existing
/// flows are never evicted to make room.
@_spi(Simulation) public final class UDPFlowBudget: Sendable {
    private let used: [FlowCount]
    let caps: [Int]

    private final class FlowCount: Sendable {
        let value = Atomic<Int>(0)
    }

    init(caps: [Int]) {
        self.caps = caps
        used = caps.map { _ in FlowCount() }
    }

    /// Takes one flow of `rule`'s cap; false when the rule is full.
    func reserve(_ rule: Int) -> Bool {
        let after = used[rule].value.wrappingAdd(1, ordering: .relaxed).newValue
        guard after <= caps[rule] else {
            used[rule].value.wrappingSubtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func release(_ rule: Int) {
        let after = used[rule].value.wrappingSubtract(1, ordering: .relaxed).newValue
        precondition(after >= 0, "rule \(rule): more UDP flows released than reserved")
    }

    func active(_ rule: Int) -> Int { used[rule].value.load(ordering: .relaxed) }
}
