import Synchronization

/// Per-rule totals, summed over all workers at the moment of reading.
public struct RuleCounters: Sendable, Equatable {
    public var bytesIn: UInt64 = 0           // client -> upstream payload bytes delivered
    public var bytesOut: UInt64 = 0          // upstream -> client payload bytes delivered
    public var connectionsActive: UInt64 = 0
    public var connectionsTotal: UInt64 = 0
    public var connectFailures: UInt64 = 0   // refused, timed out or unreachable dials
    public var rejected: UInt64 = 0          // accepted but dropped: no free connection slot
    public var preludeFailures: UInt64 = 0   // PROXY header not delivered in time (also a connect failure)
    public var splicedHalves: UInt64 = 0     // auto relay: halves moved to splice as bulk streams
    /// Pipes closed instead of pooled because they were not provably empty (a connection
    /// ended with bytes in flight through its pipe). Their bytes die with them.
    public var pipesDiscarded: UInt64 = 0
    /// Sends that stalled on a full destination while buffers were scarce, so their
    /// unsent bytes moved from the shared buffer ring to the connection's own space.
    public var spilledSends: UInt64 = 0
    /// Connections closed by the rule's `idle_timeout_secs`.
    public var idleClosed: UInt64 = 0
    /// Connections that found their target's name unresolvable, and uses of stale
    /// answers after a failed refresh (Portunus's `err.dns_failures`).
    public var dnsFailures: UInt64 = 0
    /// Transitions of a target of the rule from Healthy to Failed (`target_failovers_total`).
    public var targetFailovers: UInt64 = 0
    /// UDP: datagrams relayed client → upstream and upstream → client (their bytes
    /// count in bytesIn / bytesOut), and flows open now.
    public var datagramsIn: UInt64 = 0
    public var datagramsOut: UInt64 = 0
    public var flowsActive: UInt64 = 0
    /// Flows evicted by an ICMP error (refused, reset, aborted, unreachable).
    public var icmpEvict: UInt64 = 0
    /// Datagrams dropped: too long for a buffer or for the path (EMSGSIZE), a full
    /// socket buffer (EWOULDBLOCK), a new client of a rule at `udp_max_flows`, a new
    /// client whose target name is being resolved.
    public var emsgsize: UInt64 = 0
    public var wouldblock: UInt64 = 0
    public var flowsDroppedOverflow: UInt64 = 0
    public var flowsPendingDrops: UInt64 = 0
    /// Datagrams a send refused for another reason (a local address gone, no route):
    /// dropped, the flow kept (Portunus's `err.send_dropped`).
    public var sendDropped: UInt64 = 0
    /// Clients of an `accept_proxy` rule reset for their PROXY header: malformed, of a
    /// version the rule does not take, too long, or not complete within the time box.
    public var proxyInRejected: UInt64 = 0
    public init() {}

    /// Field by field: the same rule's totals from two engines (a reload's old and new).
    public static func += (lhs: inout RuleCounters, rhs: RuleCounters) {
        lhs.bytesIn &+= rhs.bytesIn
        lhs.bytesOut &+= rhs.bytesOut
        lhs.connectionsActive &+= rhs.connectionsActive
        lhs.connectionsTotal &+= rhs.connectionsTotal
        lhs.connectFailures &+= rhs.connectFailures
        lhs.rejected &+= rhs.rejected
        lhs.preludeFailures &+= rhs.preludeFailures
        lhs.splicedHalves &+= rhs.splicedHalves
        lhs.pipesDiscarded &+= rhs.pipesDiscarded
        lhs.spilledSends &+= rhs.spilledSends
        lhs.idleClosed &+= rhs.idleClosed
        lhs.dnsFailures &+= rhs.dnsFailures
        lhs.targetFailovers &+= rhs.targetFailovers
        lhs.datagramsIn &+= rhs.datagramsIn
        lhs.datagramsOut &+= rhs.datagramsOut
        lhs.flowsActive &+= rhs.flowsActive
        lhs.icmpEvict &+= rhs.icmpEvict
        lhs.emsgsize &+= rhs.emsgsize
        lhs.wouldblock &+= rhs.wouldblock
        lhs.flowsDroppedOverflow &+= rhs.flowsDroppedOverflow
        lhs.flowsPendingDrops &+= rhs.flowsPendingDrops
        lhs.sendDropped &+= rhs.sendDropped
        lhs.proxyInRejected &+= rhs.proxyInRejected
    }
}

/// What each counter slot holds.
enum CounterField: Int, CaseIterable {
    case bytesIn, bytesOut, connectionsActive, connectionsTotal, connectFailures, rejected, preludeFailures, splicedHalves
    case pipesDiscarded, spilledSends, idleClosed, dnsFailures, targetFailovers
    case datagramsIn, datagramsOut, flowsActive, icmpEvict, emsgsize, wouldblock, flowsDroppedOverflow, flowsPendingDrops, sendDropped
    case proxyInRejected
}

/// One worker's counters. Written only by that worker's thread and read by any thread:
/// each word is accessed with relaxed atomic loads and stores (never read-modify-write),
/// so the hot path pays a plain load and store, and each worker's block has cache
/// lines of its own, so no line is shared by two writers.
@_spi(Simulation) public final class WorkerCounters: @unchecked Sendable {
    // @unchecked: the storage is only mutated by its owning worker thread, through
    // atomic stores; other threads only perform atomic loads.
    private let storage: UnsafeMutablePointer<Atomic<UInt64>>
    private let rules: Int
    /// A worker's block starts on its own cache line and fills whole lines (128 bytes:
    /// two 64-byte lines, as adjacent-line prefetch pairs them), so two workers' blocks
    /// never share a line.
    private static let lineBytes = 128

    @_spi(Simulation) public init(rules: Int) {
        self.rules = rules
        let n = rules * CounterField.allCases.count
        let bytes = (n * MemoryLayout<Atomic<UInt64>>.stride + Self.lineBytes - 1) / Self.lineBytes * Self.lineBytes
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: Self.lineBytes)
        storage = raw.bindMemory(to: Atomic<UInt64>.self, capacity: n)
        for i in 0..<n { (storage + i).initialize(to: Atomic(0)) }
    }

    deinit {
        storage.deinitialize(count: rules * CounterField.allCases.count)
        UnsafeMutableRawPointer(storage).deallocate()
    }

    @inline(__always)
    private func index(_ field: CounterField, _ rule: Int) -> Int {
        rule * CounterField.allCases.count + field.rawValue
    }

    /// Adds `amount` (wrapping, so a decrement is `add(0 &- 1)`). Owner thread only.
    @inline(__always)
    func add(_ field: CounterField, rule: Int, _ amount: UInt64) {
        let i = index(field, rule)
        storage[i].store(storage[i].load(ordering: .relaxed) &+ amount, ordering: .relaxed)
    }

    func load(_ field: CounterField, rule: Int) -> UInt64 {
        storage[index(field, rule)].load(ordering: .relaxed)
    }

    @_spi(Simulation) public func add(into totals: inout RuleCounters, rule: Int) {
        totals.bytesIn &+= load(.bytesIn, rule: rule)
        totals.bytesOut &+= load(.bytesOut, rule: rule)
        totals.connectionsActive &+= load(.connectionsActive, rule: rule)
        totals.connectionsTotal &+= load(.connectionsTotal, rule: rule)
        totals.connectFailures &+= load(.connectFailures, rule: rule)
        totals.rejected &+= load(.rejected, rule: rule)
        totals.preludeFailures &+= load(.preludeFailures, rule: rule)
        totals.splicedHalves &+= load(.splicedHalves, rule: rule)
        totals.pipesDiscarded &+= load(.pipesDiscarded, rule: rule)
        totals.spilledSends &+= load(.spilledSends, rule: rule)
        totals.idleClosed &+= load(.idleClosed, rule: rule)
        totals.dnsFailures &+= load(.dnsFailures, rule: rule)
        totals.targetFailovers &+= load(.targetFailovers, rule: rule)
        totals.datagramsIn &+= load(.datagramsIn, rule: rule)
        totals.datagramsOut &+= load(.datagramsOut, rule: rule)
        totals.flowsActive &+= load(.flowsActive, rule: rule)
        totals.icmpEvict &+= load(.icmpEvict, rule: rule)
        totals.emsgsize &+= load(.emsgsize, rule: rule)
        totals.wouldblock &+= load(.wouldblock, rule: rule)
        totals.flowsDroppedOverflow &+= load(.flowsDroppedOverflow, rule: rule)
        totals.flowsPendingDrops &+= load(.flowsPendingDrops, rule: rule)
        totals.sendDropped &+= load(.sendDropped, rule: rule)
        totals.proxyInRejected &+= load(.proxyInRejected, rule: rule)
    }
}
