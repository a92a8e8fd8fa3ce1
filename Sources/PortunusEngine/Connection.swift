/// A connection record in the worker's slab, and the connection's state machine.
///
/// The record is preallocated, reused, never freed while the worker runs. A slot is
/// reused only when `inFlight` is back to zero, and its generation is bumped then, so a
/// late completion can never touch the next occupant.
///
/// The machine: ``handle(_:_:)`` takes an event and returns the one operation the worker
/// carries out; it does no I/O. Its two halves are machines of their own
/// (``RelayHalf``); this one covers resolving and dialling the targets, the PROXY
/// header, the relay as a whole and the close.
///
/// Targets are tried in the order the connection saw their health when it arrived:
/// the Healthy ones in priority order, then the Failed ones. A DNS-named target is
/// resolved first (from the worker's cache, or waiting for the resolver), then each of
/// its addresses is dialled in turn; an IP target has one address.
///
/// ```
///  accepted ─awaitProxyHeader─▶ readingProxyHeader ─start─▶ (as from accepted; the rule has accept_proxy)
///  accepted ─start─▶ resolving(e) ─resolved─▶ dialling(e, a) ─connected─▶ sendingPrelude(e, a) ─preludeSent─▶ relaying
///       └──(IP target)───────────────────────▲  ▲   │   └──connected (no header)─────────────────────────────▲      │
///                                             │  └───┴─attemptFailed(nextAddress) (a + 1) ◀──────────┘        halfEnded
///       resolving/dialling/sendingPrelude ─attemptFailed─▶ next target (resolving or dialling) │ none left ─▶ closing ◀─┘
///  any live state ─close(reset)─▶ closing(reset) ─settled─▶ release (slot freed)
/// ```
struct Connection {
    enum State: Equatable {
        /// In the slab's free list.
        case free
        /// Taken by a client the worker just accepted; `start` follows at once.
        case accepted
        /// The rule takes a PROXY header from a load balancer in front: it is being read
        /// off the client (peeked, then exactly its bytes taken) before any dial.
        case readingProxyHeader
        /// Waiting for the resolver's answer for plan endpoint `endpoint`'s name, with a
        /// timer of the connect timeout's length; the worker decides from its cache
        /// whether it waits at all.
        case resolving(endpoint: Int32)
        /// A connect to address `address` of plan endpoint `endpoint` (with its link
        /// timeout) is in flight.
        case dialling(endpoint: Int32, address: Int32)
        /// Connected; the PROXY header's send (with its link timeout) is in flight.
        case sendingPrelude(endpoint: Int32, address: Int32)
        /// Both halves relay (see ``RelayHalf``).
        case relaying
        /// Cancels issued; waiting for the operations in flight to end. `reset`: the
        /// sockets close with RST (an error, a cut, or bytes left undelivered).
        case closing(reset: Bool)

        /// The target and address being dialled or sent a header, if any.
        var attempt: (endpoint: Int32, address: Int32)? {
            switch self {
            case let .dialling(endpoint, address), let .sendingPrelude(endpoint, address): (endpoint, address)
            default: nil
            }
        }
    }

    enum Event {
        /// Try the listener's targets; bit i of `failedTargets`: the listener's i-th target
        /// (the first 64) is Failed, so it is tried after the Healthy ones.
        case start(failedTargets: UInt64)
        /// The rule accepts a PROXY header: read it before `start`.
        case awaitProxyHeader
        /// The name being resolved has an address to dial (fresh, or stale and counted).
        case resolved
        case connected
        case preludeSent
        /// The attempt failed: the name did not resolve, or the socket, connect, its
        /// timeout or the PROXY header failed. `nextAddress`: the target has another
        /// address after this one (the next target is tried only after the last).
        case attemptFailed(nextAddress: Bool)
        /// One half passed its EOF on; `otherEnded`: the other had already.
        case halfEnded(Direction, otherEnded: Bool)
        /// End the connection now (an error, the idle timeout, the drain budget, a
        /// client gone before its header could be built).
        case close(reset: Bool)
        /// Closing, and the last operation in flight has completed.
        case settled
    }

    enum Operation: Equatable {
        case none
        /// Peek at the client's first bytes for its PROXY header.
        case readProxyHeader
        /// Find addresses for plan endpoint `endpoint`'s name: from the cache, or wait.
        case resolve(endpoint: Int32)
        /// Open a socket and connect it to address `address` of plan endpoint `endpoint`.
        case dial(endpoint: Int32, address: Int32)
        case sendPrelude(endpoint: Int32)
        case startRelay
        /// Pass one half's EOF on: shutdown(SHUT_WR) of its destination.
        case shutdownWrite(Direction)
        /// Every target failed: the client is closed.
        case giveUp
        /// Cancel everything in flight on both sockets (or release at once if nothing is).
        case beginClose
        /// Close the sockets and free the slot.
        case release(reset: Bool)
    }

    // Field order keeps the record at 160 bytes (little padding between the groups).
    var generation: UInt32 = 0
    var state: State = .free
    /// Resolve timers cancelled whose completion has not arrived: the next that many
    /// timer completions are theirs, not the live timer's (at most one per named target
    /// of the rule).
    var cancelledTimers: UInt16 = 0
    var client: Int32 = -1
    var upstream: Int32 = -1
    /// Listener index in the plan, and its rule.
    var listener: Int32 = 0
    var rule: Int32 = 0
    /// Bytes of the PROXY header in the slot's prelude area (0: none).
    var preludeLength: Int32 = 0
    /// SQEs submitted whose completion has not arrived yet.
    var inFlight: Int32 = 0
    /// Bit i: the listener's i-th target was Failed when the connection arrived.
    var failedTargets: UInt64 = 0
    /// Bit i: the current name's i-th address had failed a connect recently when the
    /// connection started on the name (dialled after the others).
    var deadAddresses: UInt32 = 0
    /// When a byte last moved either way (the worker's coarse clock, ms), for the idle timeout.
    var lastActiveMs: Int64 = 0
    /// While waiting for a name: the name's index, and the neighbours in the worker's
    /// list of connections waiting for it (-1: none). -1 when not waiting.
    var waitingName: Int32 = -1
    var waitPrevious: Int32 = -1
    var waitNext: Int32 = -1
    /// Next free slot when free.
    var nextFree: Int32 = -1
    /// An inbound PROXY header: its bytes taken off the client so far, and its whole
    /// length once complete (0 before, and for a rule without accept_proxy). The bytes
    /// stay in the slot's inbound area for the outbound header.
    var inboundConsumed: Int16 = 0
    var inboundLength: Int16 = 0
    /// The worker's count of connections when this one arrived (``Worker/connectionID(_:)``).
    var serial: UInt64 = 0
    var up = RelayHalf()
    var down = RelayHalf()

    @inline(__always)
    subscript(direction: Direction) -> RelayHalf {
        get { direction == .up ? up : down }
        set { if direction == .up { up = newValue } else { down = newValue } }
    }

    @inline(__always)
    var isClosing: Bool {
        if case .closing = state { true } else { false }
    }

    /// The transition function: the whole table of this machine. `plan` is read only
    /// (which targets the listener has, and which of them take a PROXY header).
    mutating func handle(_ event: Event, _ plan: ForwardingPlan) -> Operation {
        switch (state, event) {
        case (.accepted, .awaitProxyHeader):
            state = .readingProxyHeader
            return .readProxyHeader
        case let (.accepted, .start(failed)), let (.readingProxyHeader, .start(failed)):
            failedTargets = failed
            return tryTarget(nextTarget(after: nil, plan), plan)
        case let (.resolving(endpoint), .resolved):
            state = .dialling(endpoint: endpoint, address: 0)
            return .dial(endpoint: endpoint, address: 0)
        case let (.dialling(endpoint, address), .connected):
            guard plan.endpointPrelude[Int(endpoint)] != nil else {
                state = .relaying
                return .startRelay
            }
            state = .sendingPrelude(endpoint: endpoint, address: address)
            return .sendPrelude(endpoint: endpoint)
        case (.sendingPrelude, .preludeSent):
            state = .relaying
            return .startRelay
        case let (.dialling(endpoint, address), .attemptFailed(nextAddress)),
             let (.sendingPrelude(endpoint, address), .attemptFailed(nextAddress)):
            if nextAddress {
                state = .dialling(endpoint: endpoint, address: address + 1)
                return .dial(endpoint: endpoint, address: address + 1)
            }
            return tryTarget(nextTarget(after: endpoint, plan), plan)
        case let (.resolving(endpoint), .attemptFailed):
            return tryTarget(nextTarget(after: endpoint, plan), plan)
        case let (.relaying, .halfEnded(direction, otherEnded)):
            // When the other half has ended too, close() sends the FIN itself (both
            // receive queues are drained, so it is a FIN, not an RST) and the shutdown
            // call is saved.
            guard otherEnded else { return .shutdownWrite(direction) }
            state = .closing(reset: false)
            return .beginClose
        case let (.resolving, .close(reset)), let (.dialling, .close(reset)), let (.sendingPrelude, .close(reset)),
             let (.relaying, .close(reset)), let (.readingProxyHeader, .close(reset)):
            state = .closing(reset: reset)
            return .beginClose
        case let (.closing(wasReset), .close(reset)):
            state = .closing(reset: wasReset || reset)
            return .none
        // Completions of the dial or the header that arrive after the close began:
        // the sockets are released with the slot.
        case (.closing, .connected), (.closing, .preludeSent), (.closing, .attemptFailed):
            return .none
        case let (.closing(reset), .settled):
            precondition(inFlight == 0, "connection settled with \(inFlight) operations in flight")
            return .release(reset: reset)
        default:
            preconditionFailure("connection in state \(state) got event \(event)")
        }
    }

    /// Starts on `endpoint`: resolve its name first, or dial its address; with no
    /// target left, give up.
    private mutating func tryTarget(_ endpoint: Int32?, _ plan: ForwardingPlan) -> Operation {
        guard let endpoint else {
            state = .closing(reset: false)
            return .giveUp
        }
        if plan.endpointName[Int(endpoint)] >= 0 {
            state = .resolving(endpoint: endpoint)
            return .resolve(endpoint: endpoint)
        }
        state = .dialling(endpoint: endpoint, address: 0)
        return .dial(endpoint: endpoint, address: 0)
    }

    /// The target after `endpoint` (nil: the first) in this connection's order: the
    /// Healthy ones in priority order, then the Failed ones; each once.
    func nextTarget(after endpoint: Int32?, _ plan: ForwardingPlan) -> Int32? {
        let range = plan.listeners[Int(listener)].endpoints
        let lower = Int32(range.lowerBound), upper = Int32(range.upperBound)
        @inline(__always) func isFailed(_ e: Int32) -> Bool {
            let bit = e - lower
            return bit < 64 && failedTargets & (1 << UInt64(bit)) != 0
        }
        // Phase 0: Healthy targets; phase 1: Failed ones.
        var phase = endpoint.map { isFailed($0) ? 1 : 0 } ?? 0
        var candidate = endpoint.map { $0 + 1 } ?? lower
        while phase < 2 {
            while candidate < upper {
                if isFailed(candidate) == (phase == 1) { return candidate }
                candidate += 1
            }
            phase += 1
            candidate = lower
        }
        return nil
    }
}
