import Glibc
import PortunusRing

/// The idle timeout (`idle_timeout_secs`): no timer per connection or per operation.
/// Every relayed byte stamps its connection with the worker's coarse clock (read once
/// per batch of completions, ``WorkerIO/nowMs()``), and one periodic timer per worker scans the slots in use
/// and closes those idle longer than their rule allows. With a sweep every quarter of
/// the shortest timeout (100 ms to 5 s), a connection is closed between 1× and 1.25×
/// its timeout after its last byte.
extension Worker {
    /// The sweep period for the plan, or nil when no rule has an idle timeout or takes
    /// an inbound PROXY header (whose time box the sweep enforces too).
    static func idleSweepMs(_ plan: ForwardingPlan) -> Int? {
        // Inbound PROXY headers' time boxes are swept the same way.
        let boxes = zip(plan.ruleAcceptProxy, plan.ruleAcceptProxyTimeoutMs).compactMap { $0 == nil ? nil : $1 }
        guard let shortest = (plan.ruleIdleTimeoutMs.filter { $0 > 0 } + boxes).min() else { return nil }
        return min(max(shortest / 4, 100), 5000)
    }

    func armIdleSweep() {
        guard let sweep = idleSweep, !stopping || retiring else { return }
        io.prepareTimeout(sweep, userData: UserData(slot: 0, generation: 0, kind: OperationKind.idleSweep.rawValue))
    }

    /// Closes every relaying connection idle past its rule's timeout, and every client
    /// whose PROXY header is late, then re-arms.
    func onIdleSweep() {
        if setup.plan.acceptsProxy { rejectSlowProxyHeaders() }
        // Slots above the high-water mark were never used; scanning allocates nothing.
        for slot in 0..<slab.highWater where slab[slot].state == .relaying {
            let rule = Int(slab[slot].rule)
            let timeoutMs = setup.plan.ruleIdleTimeoutMs[rule]
            guard timeoutMs > 0, nowMs - slab[slot].lastActiveMs >= Int64(timeoutMs) else { continue }
            counters.add(.idleClosed, rule: rule, 1)
            // A half still holding bytes for a peer that stopped reading is cut (RST):
            // a FIN would claim a clean end the peer never got.
            close(slot, reset: slab[slot].up.holdsUndeliveredBytes || slab[slot].down.holdsUndeliveredBytes)
        }
        armIdleSweep()
    }
}
