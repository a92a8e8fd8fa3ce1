/// The deterministic simulator's entry point: one seed, one world, one verdict.
///
/// Each seed draws a configuration (1–3 rules, 1–3 targets each, some with a PROXY
/// header, sometimes an idle timeout), a relay mode, tiny buffer and pipe sizes, a fault
/// profile, and 20–160 clients with random upload and download sizes, start times,
/// reading paces and reset points; then it runs the real `Worker` against a simulated
/// kernel until every connection has ended and the worker has stopped, checking the
/// invariants after every step (see README, "Deterministic simulation").
public enum Simulation {
    /// Runs `seed`; nil when every invariant held, else the first violation.
    public static func run(seed: UInt64) -> String? {
        outcome(seed: seed).failure
    }

    /// What a run ended with; equal for two runs of one seed.
    public struct Outcome: Equatable, Sendable {
        public let failure: String?
        public let endMs: Int64
        public let clients: Int
        public let bytesUp: UInt64
        public let bytesDown: UInt64
    }

    public static func outcome(seed: UInt64) -> Outcome {
        let world = SimWorld(seed: seed)
        let failure = world.run()
        return Outcome(failure: failure, endMs: world.now, clients: world.clients.count,
                       bytesUp: world.deliveredUp.reduce(0, +), bytesDown: world.deliveredDown.reduce(0, +))
    }
}
