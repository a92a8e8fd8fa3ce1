/// A connection record in the worker's slab, and the connection's state machine.
///
/// The record is preallocated, reused, never freed while the worker runs. A slot is
/// reused only when `inFlight` is back to zero, and its generation is bumped then, so a
/// late completion can never touch the next occupant.
///
/// The machine: ``handle(_:_:)`` takes an event and returns the one operation the worker
/// carries out; it does no I/O. Its two halves are machines of their own
/// (``RelayHalf``); this one covers dialling, the PROXY header, the relay as a whole
/// and the close.
///
/// ```
///  accepted ─start─▶ dialling(e) ─connected─▶ sendingPrelude(e) ─preludeSent─▶ relaying ─halfEnded (both)─▶ closing
///                     ▲   │   └───connected (no header)───────────────────────────▲                         │
///                     └───┴─attemptFailed (next target) ◀─ attemptFailed ─┘                                settled
///                          attemptFailed (no target left) ─▶ closing                                          ▼
///  any live state ─close(reset)─▶ closing(reset)                                                  release (slot freed)
/// ```
struct Connection {
    enum State: Equatable {
        /// In the slab's free list.
        case free
        /// Taken by a client the worker just accepted; `start` follows at once.
        case accepted
        /// A connect to plan endpoint `endpoint` (with its link timeout) is in flight.
        case dialling(endpoint: Int32)
        /// Connected to `endpoint`; the PROXY header's send (with its link timeout) is in flight.
        case sendingPrelude(endpoint: Int32)
        /// Both halves relay (see ``RelayHalf``).
        case relaying
        /// Cancels issued; waiting for the operations in flight to end. `reset`: the
        /// sockets close with RST (an error, a cut, or bytes left undelivered).
        case closing(reset: Bool)
    }

    enum Event {
        /// Dial the listener's first target.
        case start
        case connected
        case preludeSent
        /// The attempt on the current target failed (socket, connect, timeout, or its
        /// PROXY header).
        case attemptFailed
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
        /// Open a socket and connect it to plan endpoint `endpoint`.
        case dial(endpoint: Int32)
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

    var generation: UInt32 = 0
    var state: State = .free
    var client: Int32 = -1
    var upstream: Int32 = -1
    /// Listener index in the plan, and its rule.
    var listener: Int32 = 0
    var rule: Int32 = 0
    /// Bytes of the PROXY header in the slot's prelude area (0: none).
    var preludeLength: Int32 = 0
    /// SQEs submitted whose completion has not arrived yet.
    var inFlight: Int32 = 0
    /// When a byte last moved either way (the worker's coarse clock, ms), for the idle timeout.
    var lastActiveMs: Int64 = 0
    /// Next free slot when free.
    var nextFree: Int32 = -1
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
        case (.accepted, .start):
            let first = Int32(plan.listeners[Int(listener)].endpoints.lowerBound)
            state = .dialling(endpoint: first)
            return .dial(endpoint: first)
        case let (.dialling(endpoint), .connected):
            guard plan.endpointPrelude[Int(endpoint)] != nil else {
                state = .relaying
                return .startRelay
            }
            state = .sendingPrelude(endpoint: endpoint)
            return .sendPrelude(endpoint: endpoint)
        case (.sendingPrelude, .preludeSent):
            state = .relaying
            return .startRelay
        case let (.dialling(endpoint), .attemptFailed), let (.sendingPrelude(endpoint), .attemptFailed):
            // Targets are tried once each, in priority order.
            let next = endpoint + 1
            if next < Int32(plan.listeners[Int(listener)].endpoints.upperBound) {
                state = .dialling(endpoint: next)
                return .dial(endpoint: next)
            }
            state = .closing(reset: false)
            return .giveUp
        case let (.relaying, .halfEnded(direction, otherEnded)):
            // When the other half has ended too, close() sends the FIN itself (both
            // receive queues are drained, so it is a FIN, not an RST) and the shutdown
            // call is saved.
            guard otherEnded else { return .shutdownWrite(direction) }
            state = .closing(reset: false)
            return .beginClose
        case let (.dialling, .close(reset)), let (.sendingPrelude, .close(reset)), let (.relaying, .close(reset)):
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
}
