/// One half of a relay (client -> upstream or upstream -> client).
struct RelayHalf {
    enum Phase: UInt8 {
        case idle       // nothing in flight
        case reading    // recv (or poll + splice in) in flight
        case writing    // send (or splice out) in flight
        case awaitingWritable // the destination was full: a send of the rest waits in the kernel, or (splice) a POLLOUT poll
        case parked     // buffer ring ran dry: waits for a returned buffer
        case finished   // EOF seen and passed on with shutdown(SHUT_WR)
    }

    var phase: Phase = .idle
    /// Buffers path: the bytes being sent, and how far the send got. They sit in
    /// provided buffer `buffer`, or, once the half stalled on a full destination while
    /// buffers were scarce, in the slot's own spill space (`spilled`), so that a peer
    /// that does not read cannot keep a buffer the whole worker shares.
    var buffer: UInt16 = 0
    var offset: Int32 = 0
    var length: Int32 = 0
    var spilled = false
    /// The last recv filled a whole buffer: more is probably queued (bulk).
    var filledBuffer = false
    /// A send waiting in the kernel for room keeps this half's provided buffer (counted
    /// by the worker, which keeps such buffers under half of the ring).
    var holdsBufferWhileWaiting = false
    /// Splice path: this half's pipe (taken from the worker's pool on first use) and
    /// the bytes sitting in it.
    var pipeRead: Int32 = -1
    var pipeWrite: Int32 = -1
    var inPipe: Int32 = 0
    /// Bytes the last socket -> pipe splice moved (a short one means the socket drained).
    var lastSpliceIn: Int32 = 0
    /// Auto mode: recvs in a row that filled a whole buffer, and whether this half has
    /// moved to splice (always true in splice mode).
    var fullBufferStreak: UInt16 = 0
    var spliced = false
}

/// A connection record in the worker's slab: preallocated, reused, never freed while
/// the worker runs. A slot is reused only when `inFlight` is back to zero, and its
/// generation is bumped then, so a late completion can never touch the next occupant.
struct Connection {
    enum State: UInt8 {
        case free
        case connecting   // upstream connect (+ link timeout) in flight
        case sendingPrelude // PROXY header send (+ link timeout) in flight
        case relaying
        case closing      // cancels issued; waiting for in-flight operations to end
    }

    var generation: UInt32 = 0
    var state: State = .free
    /// Close with RST (an error or reset on one side closes both abruptly).
    var reset = false
    var client: Int32 = -1
    var upstream: Int32 = -1
    /// Listener index in the plan, and the endpoint being dialled.
    var listener: Int32 = 0
    var rule: Int32 = 0
    var endpoint: Int32 = 0
    /// Bytes of the PROXY header being sent (0: none).
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
}
