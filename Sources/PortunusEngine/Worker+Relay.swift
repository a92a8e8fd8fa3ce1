import Glibc
import PortunusRing

/// The relay state machine, one half at a time: read from the source, write all of it
/// to the destination (continuing short writes), repeat; EOF is passed on with
/// shutdown(SHUT_WR); an error on either socket resets both.
extension Worker {
    @inline(__always)
    func source(_ slot: Int32, _ direction: Direction) -> Int32 {
        direction == .up ? slab[slot].client : slab[slot].upstream
    }

    @inline(__always)
    func destination(_ slot: Int32, _ direction: Direction) -> Int32 {
        direction == .up ? slab[slot].upstream : slab[slot].client
    }

    @inline(__always)
    private func countDelivered(_ slot: Int32, _ direction: Direction, _ bytes: Int32) {
        counters.add(direction == .up ? .bytesIn : .bytesOut, rule: Int(slab[slot].rule), UInt64(bytes))
        slab[slot].lastActiveMs = nowMs
    }

    /// Arms the next read of this half. `pollFirst`: no data can be waiting (we just
    /// relayed the other side's bytes, or drained this side), so skip the first try.
    func startRead(_ slot: Int32, _ direction: Direction, pollFirst: Bool = true) {
        slab[slot][direction].phase = .reading
        guard slab[slot][direction].spliced else {
            io.prepareRecv(fd: source(slot, direction), pollFirst: pollFirst, userData: userData(slot, .recv, direction))
            slab[slot].inFlight += 1
            return
        }
        if slab[slot][direction].pipeRead >= 0 {
            // Streaming with a pipe in hand: the poll and the splice go as one chain.
            io.reserve(2)
            io.preparePoll(fd: source(slot, direction), events: .readable, userData: userData(slot, .poll, direction), options: .link)
            spliceIn(slot, direction)
            slab[slot].inFlight += 1
        } else {
            // Idle or new: wait in the socket's wait queue holding neither a pipe nor an
            // io-wq thread (an IORING_OP_SPLICE always runs in one).
            io.preparePoll(fd: source(slot, direction), events: .readable, userData: userData(slot, .readable, direction))
            slab[slot].inFlight += 1
        }
    }

    /// This half saw EOF: pass the FIN on; when both halves are done, close. When the
    /// other half is already done, close() sends the FIN itself (both receive queues
    /// are drained, so it is a FIN, not an RST) and the shutdown call is saved.
    private func finishHalf(_ slot: Int32, _ direction: Direction) {
        slab[slot][direction].phase = .finished
        if slab[slot][direction.other].phase == .finished {
            close(slot, reset: false)
        } else {
            io.shutdownWrite(destination(slot, direction))
        }
    }

    // MARK: buffers path

    /// Ownership of provided buffers: a completion that carries a buffer ID hands that
    /// buffer to this half (the kernel reports one whenever it consumed a buffer, which
    /// can include EOF and errors). It is held, as `RelayHalf.buffer`, only while a send
    /// of its bytes is in flight, and goes back to the ring on every other path
    /// (`releaseSendSource`, or once its tail is spilled): never while the kernel may
    /// still read it.
    func onRecv(_ slot: Int32, _ direction: Direction, _ c: Completion) {
        guard slab[slot].state == .relaying else {
            if let bid = c.bufferID { recycle(bid) }
            finishIfIdle(slot)
            return
        }
        if c.result > 0 {
            guard let bid = c.bufferID else { preconditionFailure("recv completed without a provided buffer") }
            slab[slot][direction].buffer = bid
            slab[slot][direction].offset = 0
            slab[slot][direction].length = c.result
            slab[slot][direction].spilled = false
            slab[slot][direction].filledBuffer = Int(c.result) == setup.settings.bufferSize
            slab[slot][direction].phase = .writing
            sendPending(slot, direction)
            return
        }
        if let bid = c.bufferID { recycle(bid) }
        if c.result == 0 {
            finishHalf(slot, direction)
        } else if c.result == -ENOBUFS {
            if buffers.heldCount < buffers.count {
                // A buffer was given back after the kernel found the ring empty (earlier
                // in this batch): its recycle woke nobody, and none may follow. Read
                // again rather than wait for a wake-up that may never come.
                startRead(slot, direction, pollFirst: false)
            } else {
                slab[slot][direction].phase = .parked
                park(userData(slot, .recv, direction))
            }
        } else {
            close(slot, reset: true)
        }
    }

    /// Where a slot's half keeps a stalled send's tail: `bufferSize` bytes of its own.
    @inline(__always)
    private func spillOffset(_ slot: Int32, _ direction: Direction) -> Int {
        (Int(slot) * 2 + Int(direction.rawValue)) * setup.settings.bufferSize
    }

    /// Sends what the half holds. The first send of a recv's bytes does not wait
    /// (MSG_DONTWAIT): a destination that cannot take them all answers at once with a
    /// short count or -EAGAIN, and `awaitWritable` decides where the rest waits. A send
    /// of the rest (`dontWait: false`) waits for room inside the kernel, costing no extra
    /// completion, from memory that `awaitWritable` made sure may wait that long.
    private func sendPending(_ slot: Int32, _ direction: Direction, dontWait: Bool = true) {
        let half = slab[slot][direction]
        let length = Int(half.length - half.offset)
        if half.spilled {
            io.prepareSend(fd: destination(slot, direction), from: spill, offset: spillOffset(slot, direction) + Int(half.offset),
                           length: length, userData: userData(slot, .send, direction), dontWait: dontWait, options: [])
        } else {
            io.prepareSend(fd: destination(slot, direction), bufferID: half.buffer, offset: Int(half.offset),
                           length: length, userData: userData(slot, .send, direction), dontWait: dontWait)
        }
        slab[slot].inFlight += 1
    }

    func onSend(_ slot: Int32, _ direction: Direction, _ result: Int32) {
        if slab[slot][direction].holdsBufferWhileWaiting {
            slab[slot][direction].holdsBufferWhileWaiting = false
            buffersHeldWaiting -= 1
        }
        // Bytes a send delivered are counted whatever the connection's state: one that
        // completes after the close began still put them on the wire.
        if result > 0 { countDelivered(slot, direction, result) }
        guard slab[slot].state == .relaying else {
            releaseSendSource(slot, direction)
            finishIfIdle(slot)
            return
        }
        if result == -EAGAIN {
            awaitWritable(slot, direction)
            return
        }
        guard result > 0 else {
            releaseSendSource(slot, direction)
            close(slot, reset: true)
            return
        }
        slab[slot][direction].offset += result
        if slab[slot][direction].offset < slab[slot][direction].length {
            awaitWritable(slot, direction)
            return
        }
        releaseSendSource(slot, direction)
        slab[slot][direction].phase = .writing
        // A recv that filled its whole buffer suggests more is queued (bulk): try at
        // once. A smaller one drained the socket: wait for readiness first.
        let full = slab[slot][direction].filledBuffer
        if full && setup.settings.relay == .auto { noteFullBuffer(slot, direction) } else { slab[slot][direction].fullBufferStreak = 0 }
        startRead(slot, direction, pollFirst: !full)
    }

    /// The destination took only part of the bytes (or none): the rest waits for room,
    /// holding nothing other connections need.
    /// - A splicing half waits for POLLOUT in the poll table (a splice cannot wait in
    ///   the kernel without holding an io-wq thread), keeping its pipe (bounded by the
    ///   pipe budget).
    /// - A half on buffers sends the rest with a send that waits in the kernel. It
    ///   keeps its buffer for that while fewer than half of the worker's buffers are
    ///   kept this way (no copy when a bulk stream briefly outruns its reader); past
    ///   that, it first copies the unsent tail (at most one buffer) into its own spill
    ///   space and gives the buffer back, so peers that do not read can never hold the
    ///   buffers every other connection needs.
    private func awaitWritable(_ slot: Int32, _ direction: Direction) {
        slab[slot][direction].phase = .awaitingWritable
        if slab[slot][direction].inPipe > 0 {
            io.preparePoll(fd: destination(slot, direction), events: .writable, userData: userData(slot, .writable, direction))
            slab[slot].inFlight += 1
            return
        }
        if !slab[slot][direction].spilled {
            if buffersHeldWaiting >= buffers.count / 2 {
                spillTail(slot, direction)
            } else {
                slab[slot][direction].holdsBufferWhileWaiting = true
                buffersHeldWaiting += 1
            }
        }
        sendPending(slot, direction, dontWait: false)
    }

    /// Moves the unsent bytes of the half's buffer into its spill space and gives the
    /// buffer back to the ring.
    private func spillTail(_ slot: Int32, _ direction: Direction) {
        let half = slab[slot][direction]
        let tail = Int(half.length - half.offset)
        buffers.copy(half.buffer, offset: Int(half.offset), length: tail, into: spill, at: spillOffset(slot, direction))
        slab[slot][direction].spilled = true
        slab[slot][direction].offset = 0
        slab[slot][direction].length = Int32(tail)
        counters.add(.spilledSends, rule: Int(slab[slot].rule), 1)
        recycle(half.buffer)
    }

    /// A splicing half's destination can take bytes again (or failed: the next splice
    /// reports how).
    func onWritable(_ slot: Int32, _ direction: Direction, _ result: Int32) {
        guard slab[slot].state == .relaying else { finishIfIdle(slot); return }
        guard result >= 0 else { close(slot, reset: true); return }
        slab[slot][direction].phase = .writing
        spliceOut(slot, direction)
    }

    /// The bytes of the half's last recv are sent, or will never be: its buffer goes
    /// back to the ring, or its spill space is emptied (and its pages handed back).
    private func releaseSendSource(_ slot: Int32, _ direction: Direction) {
        if slab[slot][direction].spilled {
            slab[slot][direction].spilled = false
            spill.discard(offset: spillOffset(slot, direction), length: setup.settings.bufferSize)
        } else {
            recycle(slab[slot][direction].buffer)
        }
    }

    /// Auto mode: a half that keeps filling whole buffers is a bulk stream; move it to
    /// splice if the worker has a pipe to spare. The switch happens between two reads,
    /// with nothing buffered, so no byte can be reordered.
    private func noteFullBuffer(_ slot: Int32, _ direction: Direction) {
        if slab[slot][direction].fullBufferStreak < UInt16.max { slab[slot][direction].fullBufferStreak += 1 }
        guard Int(slab[slot][direction].fullBufferStreak) >= setup.settings.spliceAfterFullBuffers,
              pipesInUse < setup.settings.pipeLimit else { return }
        slab[slot][direction].spliced = true
        counters.add(.splicedHalves, rule: Int(slab[slot].rule), 1)
    }

    /// Returns a buffer to the kernel and wakes one half that was waiting for one.
    func recycle(_ bufferID: UInt16) {
        buffers.recycle(bufferID)
        while let entry = parked.pop() {
            guard let slot = slab.resolve(entry), slab[slot].state == .relaying else { continue }
            let direction: Direction = entry.kind & 1 == 0 ? .up : .down
            guard slab[slot][direction].phase == .parked else { continue }
            startRead(slot, direction, pollFirst: false)
            return
        }
    }

    private func park(_ entry: UserData) {
        if parked.push(entry) { return }
        parked.removeAll { slab.resolve($0) == nil }
        guard parked.push(entry) else { preconditionFailure("parked queue overflow") }
    }

    // MARK: splice path

    private func spliceIn(_ slot: Int32, _ direction: Direction) {
        // Only an empty pipe is filled from the socket: the out-splice asks for exactly
        // what the account says is in the pipe.
        assert(slab[slot][direction].inPipe == 0, "splice into a pipe that still holds bytes")
        io.prepareSplice(from: source(slot, direction), to: slab[slot][direction].pipeWrite, length: setup.settings.pipeSize,
                           userData: userData(slot, .spliceIn, direction))
        slab[slot].inFlight += 1
    }

    /// A pipe-less splice half became readable (data, EOF or an error): take a pipe
    /// and splice, or, with the pipe budget spent, read this once through a buffer.
    func onReadable(_ slot: Int32, _ direction: Direction, _ result: Int32) {
        guard slab[slot].state == .relaying else { finishIfIdle(slot); return }
        guard result >= 0 else { close(slot, reset: true); return }
        if acquirePipe(slot, direction) {
            spliceIn(slot, direction)
        } else {
            io.prepareRecv(fd: source(slot, direction), pollFirst: false, userData: userData(slot, .recv, direction))
            slab[slot].inFlight += 1
        }
    }

    func onSpliceIn(_ slot: Int32, _ direction: Direction, _ result: Int32) {
        // Accounted before anything else, in every state: a splice the close could not
        // cancel (it names the pipe, not the socket) may complete with bytes after the
        // connection began closing, and those bytes are in the pipe (ownership rule at
        // `acquirePipe`).
        if result > 0 { slab[slot][direction].inPipe += result }
        guard slab[slot].state == .relaying else { finishIfIdle(slot); return }
        if result > 0 {
            slab[slot][direction].lastSpliceIn = result
            slab[slot][direction].phase = .writing
            spliceOut(slot, direction)
        } else if result == 0 {
            finishHalf(slot, direction)
        } else if result == -EAGAIN {
            startRead(slot, direction, pollFirst: false)
        } else {
            close(slot, reset: true)
        }
    }

    func spliceOut(_ slot: Int32, _ direction: Direction) {
        io.prepareSplice(from: slab[slot][direction].pipeRead, to: destination(slot, direction),
                           length: Int(slab[slot][direction].inPipe), userData: userData(slot, .spliceOut, direction))
        slab[slot].inFlight += 1
    }

    func onSpliceOut(_ slot: Int32, _ direction: Direction, _ result: Int32) {
        // Accounted in every state too: a cancelled out-splice may still have moved part
        // of the pipe's bytes to the destination before it stopped.
        if result > 0 {
            countDelivered(slot, direction, result)
            slab[slot][direction].inPipe -= result
            assert(slab[slot][direction].inPipe >= 0, "spliced out more than the pipe held")
        }
        guard slab[slot].state == .relaying else { finishIfIdle(slot); return }
        guard result > 0 || result == -EAGAIN else { close(slot, reset: true); return }
        if slab[slot][direction].inPipe > 0 {
            // The destination is full (the splice is non-blocking): wait for POLLOUT in
            // the poll table, keeping the pipe and no thread.
            awaitWritable(slot, direction)
            return
        }
        // A splice that moved less than a buffer's worth drained the socket: the half
        // is no longer streaming, so it gives its pipe back rather than hold it idle
        // (and in auto mode returns to the buffers path).
        if slab[slot][direction].lastSpliceIn < Int32(setup.settings.bufferSize) {
            givePipeBack(slot, direction)
            if setup.settings.relay == .auto {
                slab[slot][direction].spliced = false
                slab[slot][direction].fullBufferStreak = 0
            }
        }
        startRead(slot, direction, pollFirst: false)
    }
}
