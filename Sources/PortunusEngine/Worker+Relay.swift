import Glibc
import PortunusRing

/// The relay: completions of a half's operations become events of its machine
/// (``RelayHalf``), and the steps the machine returns become submissions. Nothing here
/// decides what comes next; it only says what a completion reported and carries out
/// what the machine asked for.
extension Worker {
    @inline(__always)
    func source(_ slot: Int32, _ direction: Direction) -> Int32 {
        direction == .up ? slab[slot].client : slab[slot].upstream
    }

    @inline(__always)
    func destination(_ slot: Int32, _ direction: Direction) -> Int32 {
        direction == .up ? slab[slot].upstream : slab[slot].client
    }

    /// Bytes a send or splice out put on the wire, counted whatever the connection's
    /// state (one that completes after the close began still delivered them).
    @inline(__always)
    private func countDelivered(_ slot: Int32, _ direction: Direction, _ bytes: Int32) {
        counters.add(direction == .up ? .bytesIn : .bytesOut, rule: Int(slab[slot].rule), UInt64(bytes))
        slab[slot].lastActiveMs = nowMs
    }

    // MARK: completions -> events

    /// Ownership of provided buffers: a completion that carries a buffer ID hands that
    /// buffer over (the kernel reports one whenever it consumed a buffer, which can
    /// include EOF and errors). Only `received` passes it on to the machine, which holds
    /// it in its `sending` state until the send of its bytes ends; on every other
    /// outcome it goes straight back to the ring.
    func onRecv(_ slot: Int32, _ direction: Direction, _ c: Completion) {
        if c.result > 0 {
            guard let bid = c.bufferID else { preconditionFailure("recv completed without a provided buffer") }
            drive(slot, direction, .received(bytes: c.result, buffer: bid))
            return
        }
        if let bid = c.bufferID { recycle(bid) }
        switch c.result {
        case 0: drive(slot, direction, .endOfStream)
        case -ENOBUFS:
            buffers.ranDry()
            drive(slot, direction, .noBuffer(ringHasFree: buffers.heldCount < buffers.count))
        default: drive(slot, direction, .failed(errno: -c.result))
        }
    }

    func onSend(_ slot: Int32, _ direction: Direction, _ result: Int32) {
        if result > 0 {
            countDelivered(slot, direction, result)
            drive(slot, direction, .sent(bytes: result))
        } else if result == -EAGAIN {
            drive(slot, direction, .sendWouldBlock)
        } else {
            // 0 bytes sent of a non-empty send is a dead destination too.
            drive(slot, direction, .failed(errno: result == 0 ? EPIPE : -result))
        }
    }

    func onReadable(_ slot: Int32, _ direction: Direction, _ result: Int32) {
        drive(slot, direction, result >= 0 ? .readable : .failed(errno: -result))
    }

    func onWritable(_ slot: Int32, _ direction: Direction, _ result: Int32) {
        drive(slot, direction, result >= 0 ? .writable : .failed(errno: -result))
    }

    /// What a splice in returned (or, for a poll ahead of one that failed, the poll's error).
    func onSpliceIn(_ slot: Int32, _ direction: Direction, _ result: Int32) {
        // Accounted before anything else: those bytes are in the pipe (ownership rule at
        // `acquirePipe`).
        if result > 0 { slab[slot][direction].inPipe += result }
        switch result {
        case 1...: drive(slot, direction, .splicedIn(bytes: result))
        // TCP's splice also says 0 at urgent (MSG_OOB) data once the peer has shut its
        // side: bytes still wait behind it, and a recv steps past it (not the end yet).
        case 0: drive(slot, direction, io.atUrgentMark(source(slot, direction)) ? .spliceInWouldBlock : .endOfStream)
        case -EAGAIN: drive(slot, direction, .spliceInWouldBlock)
        default: drive(slot, direction, .failed(errno: -result))
        }
    }

    func onSpliceOut(_ slot: Int32, _ direction: Direction, _ result: Int32) {
        if result > 0 {
            countDelivered(slot, direction, result)
            slab[slot][direction].inPipe -= result
            precondition(slab[slot][direction].inPipe >= 0, "spliced out more than the pipe held")
        }
        if result > 0 || result == -EAGAIN {
            drive(slot, direction, .splicedOut(pipeEmpty: slab[slot][direction].inPipe == 0))
        } else {
            drive(slot, direction, .failed(errno: result == 0 ? EPIPE : -result))
        }
    }

    // MARK: the machine's steps -> submissions

    /// Feeds one event to a half's machine and carries out the step it returns.
    func drive(_ slot: Int32, _ direction: Direction, _ event: RelayHalf.Event) {
        let context = RelayHalf.Context(
            closing: slab[slot].isClosing, bufferSize: Int32(setup.settings.bufferSize),
            buffersHeldWaiting: buffersHeldWaiting, holdLimit: buffers.count / 2,
            spliceAfterFullBuffers: setup.settings.relay == .auto ? setup.settings.spliceAfterFullBuffers : 0,
            pipeToSpare: pipesInUse < setup.settings.pipeLimit)
        let step = slab[slot][direction].handle(event, context)
        if !step.effects.isEmpty { handOver(step, slot, direction) }
        submit(step, slot, direction)
    }

    private func handOver(_ step: RelayHalf.Step, _ slot: Int32, _ direction: Direction) {
        let effects = step.effects
        if effects.contains(.unholdBuffer) {
            precondition(buffersHeldWaiting > 0, "a waiting send gave back a hold the worker did not count")
            buffersHeldWaiting -= 1
        }
        if effects.contains(.releaseBuffer) { recycle(step.buffer) }
        if effects.contains(.discardSpill) { spill.discard(offset: spillOffset(slot, direction), length: setup.settings.bufferSize) }
        if effects.contains(.givePipeBack) { givePipeBack(slot, direction) }
        if effects.contains(.holdBuffer) { buffersHeldWaiting += 1 }
        if effects.contains(.countSplicedHalf) { counters.add(.splicedHalves, rule: Int(slab[slot].rule), 1) }
    }

    private func submit(_ step: RelayHalf.Step, _ slot: Int32, _ direction: Direction) {
        switch step.operation {
        case .none:
            break
        case let .recv(pollFirst):
            io.prepareRecv(fd: source(slot, direction), pollFirst: pollFirst, userData: userData(slot, .recv, direction))
            slab[slot].inFlight += 1
        case .park:
            park(userData(slot, .recv, direction))
        case let .send(dontWait):
            sendPending(slot, direction, dontWait: dontWait)
        case let .spillThenSend(offset, length):
            buffers.copy(step.buffer, offset: Int(offset), length: Int(length), into: spill, at: spillOffset(slot, direction))
            counters.add(.spilledSends, rule: Int(slab[slot].rule), 1)
            recycle(step.buffer)
            sendPending(slot, direction, dontWait: false)
        case .pollReadable:
            // Idle or new: wait in the socket's wait queue holding no pipe.
            io.preparePoll(fd: source(slot, direction), events: .readable, userData: userData(slot, .readable, direction))
            slab[slot].inFlight += 1
        case .takePipe:
            drive(slot, direction, acquirePipe(slot, direction) ? .pipe : .noPipe)
        case .spliceIn:
            spliceIn(slot, direction)
        case .pollThenSpliceIn:
            // Streaming with a pipe in hand: the splice runs when the poll reports data.
            io.preparePoll(fd: source(slot, direction), events: .readable, userData: userData(slot, .poll, direction))
            slab[slot].inFlight += 1
        case .spliceOut:
            let moved = io.spliceNow(from: slab[slot][direction].pipeRead, to: destination(slot, direction),
                                     length: Int(slab[slot][direction].inPipe))
            checkSplice(moved)
            onSpliceOut(slot, direction, moved)
        case .pollWritable:
            io.preparePoll(fd: destination(slot, direction), events: .writable, userData: userData(slot, .writable, direction))
            slab[slot].inFlight += 1
        case .passOnEndOfStream:
            connectionEvent(slot, .halfEnded(direction, otherEnded: slab[slot][direction.other].state == .finished))
        case .reset:
            connectionEvent(slot, .close(reset: true))
        }
    }

    /// Where a slot's half keeps a stalled send's tail: `bufferSize` bytes of its own.
    @inline(__always)
    private func spillOffset(_ slot: Int32, _ direction: Direction) -> Int {
        (Int(slot) * 2 + Int(direction.rawValue)) * setup.settings.bufferSize
    }

    /// Sends the bytes of the half's `sending` state. The first send of a recv's bytes
    /// does not wait (MSG_DONTWAIT): a destination that cannot take them all answers at
    /// once with a short count or -EAGAIN, and the machine decides where the rest
    /// waits. A send of the rest (`dontWait: false`) waits for room inside the kernel,
    /// costing no extra completion, from memory the machine made sure may wait that long.
    private func sendPending(_ slot: Int32, _ direction: Direction, dontWait: Bool) {
        guard case let .sending(send) = slab[slot][direction].state else {
            preconditionFailure("send asked for by a half in state \(slab[slot][direction].state)")
        }
        let length = Int(send.length - send.offset)
        switch send.source {
        case .spill:
            io.prepareSend(fd: destination(slot, direction), from: spill, offset: spillOffset(slot, direction) + Int(send.offset),
                           length: length, userData: userData(slot, .send, direction), dontWait: dontWait, options: [])
        case let .buffer(id):
            io.prepareSend(fd: destination(slot, direction), bufferID: id, offset: Int(send.offset),
                           length: length, userData: userData(slot, .send, direction), dontWait: dontWait)
        }
        slab[slot].inFlight += 1
    }

    private func spliceIn(_ slot: Int32, _ direction: Direction) {
        // Only an empty pipe is filled from the socket: the out-splice asks for exactly
        // what the account says is in the pipe.
        precondition(slab[slot][direction].inPipe == 0, "splice into a pipe that still holds bytes")
        let moved = io.spliceNow(from: source(slot, direction), to: slab[slot][direction].pipeWrite, length: setup.settings.pipeSize)
        checkSplice(moved)
        onSpliceIn(slot, direction, moved)
    }

    /// The poll ahead of a streaming half's splice in completed: the splice runs now,
    /// unless the poll failed or the connection began closing meanwhile (then the half
    /// settles as if its splice had been cancelled).
    func onPollThenSpliceIn(_ slot: Int32, _ direction: Direction, _ result: Int32) {
        if result < 0 {
            onSpliceIn(slot, direction, result)
        } else if slab[slot].isClosing {
            onSpliceIn(slot, direction, -ECANCELED)
        } else {
            spliceIn(slot, direction)
        }
    }

    /// EBADF, EFAULT and EINVAL from a splice between a connection's own socket and pipe
    /// can only mean a wrong fd: a defect, as for a malformed SQE (``Worker/isOwnSQEError(_:_:)``).
    @inline(__always)
    private func checkSplice(_ result: Int32) {
        precondition(result != -EBADF && result != -EFAULT && result != -EINVAL, "splice failed with \(SystemError("splice", result: result))")
    }

    // MARK: buffers for parked halves

    /// Returns a buffer to the kernel and wakes one half that was waiting for one.
    func recycle(_ bufferID: UInt16) {
        buffers.recycle(bufferID)
        while let entry = parked.pop() {
            guard let slot = slab.resolve(entry), slab[slot].state == .relaying else { continue }
            let direction: Direction = entry.kind & 1 == 0 ? .up : .down
            guard slab[slot][direction].state == .parked else { continue }
            drive(slot, direction, .bufferReturned)
            return
        }
    }

    private func park(_ entry: UserData) {
        if parked.push(entry) { return }
        parked.removeAll { slab.resolve($0) == nil }
        guard parked.push(entry) else { preconditionFailure("parked queue overflow") }
    }
}
