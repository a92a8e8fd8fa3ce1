import Synchronization

/// The health of every plan endpoint (a rule's target at one port), shared by all
/// workers (SPEC.md §5): Healthy → Failed after 3 consecutive failures within 30 s,
/// Failed → Healthy after 2 consecutive successes. Healthy targets are dialled before
/// Failed ones; Failed ones are still tried last, which is how recovery is seen.
///
/// The hot path reads one relaxed atomic word per endpoint: whether it is Failed, and
/// whether anything is counting (a failure streak, or successes towards recovery). A
/// success on an endpoint with nothing counting touches nothing else; every other
/// update takes the lock, which only failures and recoveries ever reach.
public final class TargetHealth: Sendable {
    public struct Rules: Sendable {
        public var failuresToFail = 3
        public var failureWindowMs: Int64 = 30_000
        public var successesToRecover = 2
        public init() {}
    }

    /// A change of state, for the caller to log and count.
    public enum Transition: Sendable, Equatable {
        case failed
        case recovered
    }

    private struct Track {
        var failed = false
        var failureStreak = 0
        var streakStartMs: Int64 = 0
        var successStreak = 0
    }

    /// Bit 0: Failed. Bit 1: something is counting (the lock must be taken on success).
    private let flags: [HealthFlags]
    private let tracks: Mutex<[Track]>
    let rules: Rules

    public init(endpoints: Int, rules: Rules = Rules()) {
        flags = (0..<endpoints).map { _ in HealthFlags(0) }
        tracks = Mutex(Array(repeating: Track(), count: endpoints))
        self.rules = rules
    }

    @inline(__always)
    public func isFailed(_ endpoint: Int) -> Bool {
        flags[endpoint].value.load(ordering: .relaxed) & 1 != 0
    }

    /// A connect (and PROXY header, when the target takes one) went through.
    @inline(__always)
    public func recordSuccess(_ endpoint: Int) -> Transition? {
        guard flags[endpoint].value.load(ordering: .relaxed) != 0 else { return nil }
        return update(endpoint) { track in
            track.failureStreak = 0
            guard track.failed else { return nil }
            track.successStreak += 1
            guard track.successStreak >= self.rules.successesToRecover else { return nil }
            track.failed = false
            track.successStreak = 0
            return .recovered
        }
    }

    /// A connect error or timeout, a DNS failure, or a PROXY header not delivered.
    public func recordFailure(_ endpoint: Int, nowMs: Int64) -> Transition? {
        update(endpoint) { track in
            track.successStreak = 0
            if track.failureStreak == 0 || nowMs - track.streakStartMs > self.rules.failureWindowMs {
                track.failureStreak = 1
                track.streakStartMs = nowMs
            } else {
                track.failureStreak += 1
            }
            guard !track.failed, track.failureStreak >= self.rules.failuresToFail else { return nil }
            track.failed = true
            track.failureStreak = 0
            return .failed
        }
    }

    /// Takes over what `previous` knows of the endpoints a reload kept: `mapping`
    /// pairs an endpoint of this table with the same target of the same rule and
    /// port in `previous`. Called before any worker uses this table.
    public func adopt(from previous: TargetHealth, mapping: [(to: Int, from: Int)]) {
        let old = previous.tracks.withLock { $0 }
        tracks.withLock { tracks in
            for (to, from) in mapping {
                let track = old[from]
                tracks[to] = track
                let counting = track.failureStreak > 0 || track.successStreak > 0 || track.failed
                flags[to].value.store((track.failed ? 1 : 0) | (counting ? 2 : 0), ordering: .relaxed)
            }
        }
    }

    private func update(_ endpoint: Int, _ body: (inout Track) -> Transition?) -> Transition? {
        tracks.withLock { tracks in
            let transition = body(&tracks[endpoint])
            let track = tracks[endpoint]
            let counting = track.failureStreak > 0 || track.successStreak > 0 || track.failed
            flags[endpoint].value.store((track.failed ? 1 : 0) | (counting ? 2 : 0), ordering: .relaxed)
            return transition
        }
    }
}

/// An atomic byte with a stable address, so that an array can hold them.
private final class HealthFlags: Sendable {
    let value: Atomic<UInt8>
    init(_ initial: UInt8) { value = Atomic(initial) }
}
