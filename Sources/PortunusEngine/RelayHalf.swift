/// One half of a relay (client -> upstream or upstream -> client) as a state machine.
///
/// The state says which operation of this half is in flight and carries its data; the
/// transition function ``handle(_:_:)`` takes an event (what a completion of that
/// operation reported) and returns what to do next: resource hand-overs and at most one
/// operation to submit. It does no I/O itself, so every row of the table below can be
/// read, and broken, in one place. An event that no row accepts is a defect in the
/// engine and traps, naming the state and the event.
///
/// ```
///  idle ──start──▶ receiving ──received──▶ sending ──sent (all)──▶ receiving / awaitingReadable
///                   │  ▲   └─noBuffer─▶ parked ─bufferReturned─┘      │ └ sent (part) / wouldBlock: sending (waits for room)
///                   │  └──────────────── endOfStream ▶ finished        │
///  awaitingReadable ─readable─▶ takingPipe ─pipe─▶ splicingIn ─splicedIn─▶ splicingOut ─splicedOut─▶ splicingIn / receiving / awaitingReadable
///                                   └─noPipe─▶ receiving                                 └ pipe not empty ▶ awaitingWritable ─writable─▶ splicingOut
///  any state with an operation in flight ──failed──▶ stopped (the connection resets)
/// ```
/// While the connection closes, every completion only settles what the operation held
/// (a buffer, a spilled tail) and leaves the half `stopped`.
struct RelayHalf {
    enum State: Equatable {
        /// The connection is not relaying yet.
        case idle
        /// A recv into a provided buffer is in flight (the buffers path, or a splice half
        /// that found no pipe and reads once through a buffer).
        case receiving
        /// The buffer ring ran dry: the half waits in the worker's parked queue for a
        /// buffer to come back. Nothing in flight.
        case parked
        /// A send of a recv's bytes is in flight.
        case sending(PendingSend)
        /// Splice path, no pipe held: a POLLIN poll is in flight (an idle half holds no pipe).
        case awaitingReadable
        /// The poll fired: the worker is taking a pipe from its pool (synchronous; the
        /// next event is `pipe` or `noPipe`). Nothing in flight.
        case takingPipe
        /// A socket -> pipe splice is running, or the POLLIN poll whose completion runs
        /// it is in flight.
        case splicingIn
        /// A pipe -> socket splice is running; `lastIn` is what the splice in moved.
        case splicingOut(lastIn: Int32)
        /// The destination was full with bytes left in the pipe: a POLLOUT poll is in flight.
        case awaitingWritable(lastIn: Int32)
        /// EOF seen and passed on. Nothing in flight.
        case finished
        /// The connection is closing and this half has nothing in flight any more.
        case stopped

        /// Whether `event` is one that what this state waits for can report: the
        /// completion of its operation in flight, or (with nothing in flight) its own
        /// wake-up. Checked while closing too, where a mismatched event would otherwise
        /// hide the bugs the table catches.
        func awaits(_ event: Event) -> Bool {
            switch (self, event) {
            case (.idle, .start), (.parked, .bufferReturned), (.takingPipe, .pipe), (.takingPipe, .noPipe),
                 (.receiving, .received), (.receiving, .endOfStream), (.receiving, .noBuffer), (.receiving, .failed),
                 (.sending, .sent), (.sending, .sendWouldBlock), (.sending, .failed),
                 (.awaitingReadable, .readable), (.awaitingReadable, .failed),
                 (.splicingIn, .splicedIn), (.splicingIn, .endOfStream), (.splicingIn, .spliceInWouldBlock), (.splicingIn, .failed),
                 (.splicingOut, .splicedOut), (.splicingOut, .failed),
                 (.awaitingWritable, .writable), (.awaitingWritable, .failed):
                true
            default:
                false
            }
        }
    }

    /// How the half moves bytes now. Part of the state: `auto` halves move between the two.
    enum Path: Equatable {
        /// Provided buffers. `fullStreak`: recvs in a row that filled a whole buffer (the
        /// auto mode's sign of a bulk stream).
        case buffers(fullStreak: UInt16)
        /// A pipe and splice. `returnsToBuffers`: an auto half, which goes back to
        /// buffers once its stream drains.
        case splice(returnsToBuffers: Bool)
    }

    /// The bytes of one recv on their way out, and where they sit.
    struct PendingSend: Equatable {
        enum Source: Equatable {
            /// A provided buffer, held by this half until the send of its bytes ends.
            case buffer(UInt16)
            /// The slot's own spill space for this direction (a tail moved out of a
            /// buffer while the destination was full and buffers were scarce).
            case spill
        }
        var source: Source
        var offset: Int32
        var length: Int32
        /// The recv filled its whole buffer: more is probably queued (bulk).
        var filledBuffer: Bool
        /// The send in flight waits in the kernel for room while keeping its provided
        /// buffer, counted in the worker's ``Worker/buffersHeldWaiting``.
        var holdsBuffer: Bool

        /// The send in flight waits for room (it is not the first, non-blocking one).
        var waitsForRoom: Bool { holdsBuffer || source == .spill }
    }

    var state: State = .idle
    var path: Path
    /// Resource, not state: the pipe this half holds (from ``Worker/acquirePipe(_:_:)``
    /// to ``Worker/givePipeBack(_:_:)``, which may be as late as the slot's release),
    /// and the bytes in it, kept on every splice (see `Worker+Pipes.swift`).
    var pipeRead: Int32 = -1
    var pipeWrite: Int32 = -1
    var inPipe: Int32 = 0

    init(path: Path = .buffers(fullStreak: 0)) { self.path = path }

    var holdsPipe: Bool { pipeRead >= 0 }

    /// Bytes of this half are on their way out and not yet delivered (a send or splice
    /// out in flight, or waiting for room): closing now must reset, not claim a clean end.
    var holdsUndeliveredBytes: Bool {
        switch state {
        case .sending, .splicingOut, .awaitingWritable: true
        default: false
        }
    }

    /// What a completion of this half's operation reported (errors other than the ones
    /// named here arrive as `failed`).
    enum Event {
        case start
        case received(bytes: Int32, buffer: UInt16)
        /// A recv or a splice in read 0 bytes.
        case endOfStream
        /// ENOBUFS; `ringHasFree`: a buffer came back after the kernel found the ring empty.
        case noBuffer(ringHasFree: Bool)
        case bufferReturned
        case sent(bytes: Int32)
        /// The first, non-blocking send found no room (EAGAIN).
        case sendWouldBlock
        case readable
        case pipe
        case noPipe
        case splicedIn(bytes: Int32)
        case spliceInWouldBlock
        /// A splice out moved bytes or found no room (EAGAIN); `pipeEmpty`: the account after it.
        case splicedOut(pipeEmpty: Bool)
        case writable
        case failed(errno: Int32)
    }

    /// What the worker must know to take a transition: read once per event, no I/O.
    struct Context {
        /// The connection is closing: completions only settle what their operation held.
        var closing: Bool
        var bufferSize: Int32
        /// Provided buffers kept by waiting sends now, and the most allowed (half the ring).
        var buffersHeldWaiting: Int
        var holdLimit: Int
        /// Auto mode: full-buffer recvs in a row that move a half to splice (0: never),
        /// and whether the worker's pipe budget has room for one more half.
        var spliceAfterFullBuffers: Int
        var pipeToSpare: Bool
    }

    /// Resource hand-overs the worker makes before submitting the operation, in this order.
    struct Effects: OptionSet {
        let rawValue: UInt8
        /// A send that kept its buffer while waiting has ended: one fewer held that way.
        static let unholdBuffer = Effects(rawValue: 1 << 0)
        /// Give provided buffer `Step.buffer` back to the ring.
        static let releaseBuffer = Effects(rawValue: 1 << 1)
        /// Empty the half's spill space (its pages go back to the kernel).
        static let discardSpill = Effects(rawValue: 1 << 2)
        /// The half's stream drained: give its pipe back.
        static let givePipeBack = Effects(rawValue: 1 << 3)
        /// The next send keeps its buffer while it waits for room.
        static let holdBuffer = Effects(rawValue: 1 << 4)
        /// Auto mode moved the half to splice.
        static let countSplicedHalf = Effects(rawValue: 1 << 5)
    }

    /// The operations a transition can ask for: at most one per event.
    enum Operation: Equatable {
        case none
        case recv(pollFirst: Bool)
        /// Wait in the parked queue for a buffer.
        case park
        /// Send the pending bytes of the `sending` state.
        case send(dontWait: Bool)
        /// Copy `length` bytes at `offset` of buffer `Step.buffer` into the spill space,
        /// give the buffer back, and send them from there (waiting for room).
        case spillThenSend(offset: Int32, length: Int32)
        case pollReadable
        /// Take a pipe, then report `pipe` or `noPipe`.
        case takePipe
        case spliceIn
        /// A POLLIN poll whose completion runs a splice in (a streaming half that holds its pipe).
        case pollThenSpliceIn
        case spliceOut
        case pollWritable
        /// Pass the EOF on: shutdown(SHUT_WR) of the destination, or close when the other
        /// half has ended too.
        case passOnEndOfStream
        /// An error on either socket: the connection closes with RST.
        case reset
    }

    struct Step: Equatable {
        var effects: Effects = []
        var buffer: UInt16 = 0
        var operation: Operation

        init(_ operation: Operation, effects: Effects = [], buffer: UInt16 = 0) {
            self.operation = operation
            self.effects = effects
            self.buffer = buffer
        }
    }

    /// The transition function: the whole table of this machine.
    mutating func handle(_ event: Event, _ context: Context) -> Step {
        if context.closing { return settle(event) }
        switch (state, event) {
        case (.idle, .start), (.parked, .bufferReturned):
            return read(pollFirst: false)

        // Buffers path.
        case let (.receiving, .received(bytes, buffer)):
            state = .sending(PendingSend(source: .buffer(buffer), offset: 0, length: bytes,
                                         filledBuffer: bytes == context.bufferSize, holdsBuffer: false))
            return Step(.send(dontWait: true))
        case let (.receiving, .noBuffer(ringHasFree)):
            // A buffer given back after the kernel found the ring empty woke nobody, and
            // none may follow: read again rather than wait for a wake-up that may not come.
            if ringHasFree { return Step(.recv(pollFirst: false)) }
            state = .parked
            return Step(.park)
        case (.receiving, .endOfStream), (.splicingIn, .endOfStream):
            // A finished half needs no pipe: an empty one goes back to the pool now, not
            // when the other half ends too.
            state = .finished
            return Step(.passOnEndOfStream, effects: holdsPipe ? .givePipeBack : [])
        case let (.sending(send), .sent(bytes)):
            return sent(send, bytes: bytes, context)
        case let (.sending(send), .sendWouldBlock):
            guard send.waitsForRoom else { return sent(send, bytes: 0, context) }
            // Only the first send does not wait: io_uring retries a waiting send on
            // POLLOUT itself. A kernel that answers EAGAIN anyway would have the half
            // re-send in a loop; the connection is reset instead.
            var step = settle(event)
            step.operation = .reset
            return step

        // Splice path.
        case (.awaitingReadable, .readable):
            state = .takingPipe
            return Step(.takePipe)
        case (.takingPipe, .pipe):
            state = .splicingIn
            return Step(.spliceIn)
        case (.takingPipe, .noPipe):
            // The pipe budget is spent (or no pipe could be made): read this once through a buffer.
            state = .receiving
            return Step(.recv(pollFirst: false))
        case let (.splicingIn, .splicedIn(bytes)):
            state = .splicingOut(lastIn: bytes)
            return Step(.spliceOut)
        case (.splicingIn, .spliceInWouldBlock):
            // The poll said readable, yet the splice found nothing to move: TCP's splice
            // stops at urgent (MSG_OOB) data, which tcp_poll still reports as readable, so
            // polling again would loop for ever (and once the peer has shut its side the
            // splice says 0 there: the worker asks sockatmark before taking 0 for the
            // end). One recv through a buffer steps past the urgent byte; the half
            // splices again after it (it keeps its pipe, empty).
            state = .receiving
            return Step(.recv(pollFirst: false))
        case let (.splicingOut(lastIn), .splicedOut(pipeEmpty)):
            return splicedOut(lastIn: lastIn, pipeEmpty: pipeEmpty, context)
        case let (.awaitingWritable(lastIn), .writable):
            state = .splicingOut(lastIn: lastIn)
            return Step(.spliceOut)

        // Errors: the connection resets; what the operation held is settled first.
        case (_, .failed) where state.awaits(event):
            var step = settle(event)
            step.operation = .reset
            return step

        default:
            preconditionFailure("relay half in state \(state) got event \(event)")
        }
    }

    /// The connection is closing (or this half failed): nothing more is submitted; the
    /// buffer or spill space the finished operation held is handed back.
    private mutating func settle(_ event: Event) -> Step {
        precondition(state.awaits(event), "relay half in state \(state) got event \(event) while closing")
        var step = Step(.none)
        switch (state, event) {
        case let (.sending(send), _):
            step = release(send)
        case let (.receiving, .received(_, buffer)):
            step = Step(.none, effects: .releaseBuffer, buffer: buffer)
        default:
            break
        }
        state = .stopped
        return step
    }

    /// The send's source is done with: its buffer back to the ring, or its spill emptied.
    private func release(_ send: PendingSend) -> Step {
        var effects: Effects = send.holdsBuffer ? .unholdBuffer : []
        switch send.source {
        case let .buffer(id):
            effects.insert(.releaseBuffer)
            return Step(.none, effects: effects, buffer: id)
        case .spill:
            effects.insert(.discardSpill)
            return Step(.none, effects: effects)
        }
    }

    /// A send (the first one, non-blocking, or one that waited for room) completed
    /// having moved `bytes`.
    private mutating func sent(_ previous: PendingSend, bytes: Int32, _ context: Context) -> Step {
        var send = previous
        var effects: Effects = []
        var held = context.buffersHeldWaiting
        if send.holdsBuffer {
            effects.insert(.unholdBuffer)
            send.holdsBuffer = false
            held -= 1
        }
        send.offset += bytes
        guard send.offset == send.length else {
            precondition(send.offset < send.length, "sent more than the half held: \(send) after \(bytes) bytes")
            return awaitRoom(send, effects: effects, buffersHeldWaiting: held, context)
        }
        var step = release(send)
        step.effects.formUnion(effects)
        noteRecv(filledBuffer: send.filledBuffer, &step.effects, context)
        // A recv that filled its buffer suggests more is queued (bulk): try at once. A
        // smaller one drained the socket: wait for readiness first.
        let next = read(pollFirst: !send.filledBuffer)
        step.operation = next.operation
        return step
    }

    /// The destination took only part of the bytes (or none): the rest is sent with a
    /// send that waits in the kernel for room. It keeps its buffer while fewer than
    /// `holdLimit` are kept that way (no copy when a bulk stream briefly outruns its
    /// reader); past that the unsent tail moves into the slot's spill space and the
    /// buffer goes back, so peers that do not read can never hold the buffers every
    /// other connection needs.
    private mutating func awaitRoom(_ send: PendingSend, effects: Effects, buffersHeldWaiting: Int, _ context: Context) -> Step {
        guard case let .buffer(id) = send.source else {
            state = .sending(send)
            return Step(.send(dontWait: false), effects: effects)
        }
        if buffersHeldWaiting < context.holdLimit {
            var holding = send
            holding.holdsBuffer = true
            state = .sending(holding)
            return Step(.send(dontWait: false), effects: effects.union(.holdBuffer))
        }
        let tail = send.length - send.offset
        state = .sending(PendingSend(source: .spill, offset: 0, length: tail, filledBuffer: send.filledBuffer, holdsBuffer: false))
        return Step(.spillThenSend(offset: send.offset, length: tail), effects: effects, buffer: id)
    }

    /// Auto mode: a half that keeps filling whole buffers is a bulk stream and moves to
    /// splice if the worker has a pipe to spare. The move happens between two reads,
    /// with nothing buffered, so no byte can be reordered.
    private mutating func noteRecv(filledBuffer: Bool, _ effects: inout Effects, _ context: Context) {
        guard case let .buffers(streak) = path else { return }
        guard filledBuffer, context.spliceAfterFullBuffers > 0 else {
            path = .buffers(fullStreak: 0)
            return
        }
        let next = streak == .max ? streak : streak + 1
        if Int(next) >= context.spliceAfterFullBuffers && context.pipeToSpare {
            path = .splice(returnsToBuffers: true)
            effects.insert(.countSplicedHalf)
        } else {
            path = .buffers(fullStreak: next)
        }
    }

    /// A splice out completed (moved bytes, or found the destination full).
    private mutating func splicedOut(lastIn: Int32, pipeEmpty: Bool, _ context: Context) -> Step {
        if !pipeEmpty {
            // The destination is full (the splice is non-blocking): wait for POLLOUT in
            // the poll table, keeping the pipe and no thread.
            state = .awaitingWritable(lastIn: lastIn)
            return Step(.pollWritable)
        }
        guard lastIn < context.bufferSize else {
            // Streaming: keep the pipe, splice the next chunk as soon as it is readable.
            state = .splicingIn
            return Step(.pollThenSpliceIn)
        }
        // A splice in that moved less than a buffer's worth drained the socket: the half
        // is no longer streaming, so it gives its pipe back rather than hold it idle
        // (and an auto half returns to buffers).
        if case .splice(returnsToBuffers: true) = path { path = .buffers(fullStreak: 0) }
        var step = read(pollFirst: false, holdingPipe: false)
        step.effects.insert(.givePipeBack)
        return step
    }

    /// Arms the next read on the half's path. `pollFirst`: no data can be waiting, skip the first try.
    private mutating func read(pollFirst: Bool, holdingPipe: Bool? = nil) -> Step {
        switch path {
        case .buffers:
            state = .receiving
            return Step(.recv(pollFirst: pollFirst))
        case .splice:
            if holdingPipe ?? holdsPipe {
                state = .splicingIn
                return Step(.pollThenSpliceIn)
            }
            state = .awaitingReadable
            return Step(.pollReadable)
        }
    }
}
