import PortunusRing

/// The worker's pipes for the splice path, and the rule that keeps one connection's
/// bytes from ever reaching another through them.
///
/// A pipe outlives the connections that use it: it sits in the worker's pool between
/// them. Bytes left in a pooled pipe would be the first thing the next connection that
/// takes it sends to its own peer. So a pipe goes back to the pool only when it is
/// provably empty: its half's account (`RelayHalf.inPipe`, kept on every splice) is
/// zero **and** the kernel agrees (FIONREAD is zero). Anything else closes it, and its
/// bytes die with it.
extension Worker {
    /// Takes a pipe from the pool (or makes one) within the worker's pipe budget.
    ///
    /// Ownership: from here until ``givePipeBack(_:_:)`` the pipe belongs to this half
    /// alone. Every splice into it adds the bytes it moved to `inPipe` and every splice
    /// out of it subtracts them. Splices are calls that return before anything else
    /// runs (``WorkerIO/spliceNow(from:to:length:)``), so none is ever in flight when a
    /// connection closes and its pipe is looked at.
    func acquirePipe(_ slot: Int32, _ direction: Direction) -> Bool {
        guard pipesInUse < setup.settings.pipeLimit else { return false }
        let pipe: (read: Int32, write: Int32)
        if let pooled = pipePool.popLast() {
            pipe = pooled
        } else {
            do { pipe = try io.makePipe(size: setup.settings.pipeSize) } catch {
                // The half reads through a buffer instead; at the fd limit this happens
                // on every read, so the line is rate-limited.
                let rule = Int(slab[slot].rule)
                if let suppressed = failureLog.admit(.pipeFailed, rule: rule) {
                    logger.warning("cannot create a pipe for splice; relaying through buffers", metadata: [
                        "event": "rule.splice_pipe_failed", "rule": "\(setup.plan.ruleNames[rule])", "error": "\(error)",
                        "suppressed": .stringConvertible(suppressed),
                    ])
                }
                return false
            }
        }
        assert(slab[slot][direction].inPipe == 0)
        slab[slot][direction].pipeRead = pipe.read
        slab[slot][direction].pipeWrite = pipe.write
        pipesInUse += 1
        return true
    }

    /// Ends this half's hold on its pipe (if it has one): back to the pool when provably
    /// empty and the pool has room, otherwise closed. Called when a half stops streaming
    /// (no splice of it in flight) and when the slot is released (none at all).
    func givePipeBack(_ slot: Int32, _ direction: Direction) {
        let half = slab[slot][direction]
        guard half.pipeRead >= 0 else { return }
        slab[slot][direction].pipeRead = -1
        slab[slot][direction].pipeWrite = -1
        slab[slot][direction].inPipe = 0
        pipesInUse -= 1
        let empty = isProvablyEmpty(half, rule: Int(slab[slot].rule))
        if empty && pipePool.count < pipePoolLimit {
            pipePool.append((half.pipeRead, half.pipeWrite))
            return
        }
        if !empty { counters.add(.pipesDiscarded, rule: Int(slab[slot].rule), 1) }
        io.close(half.pipeRead)
        io.close(half.pipeWrite)
    }

    /// Whether the half's pipe holds no byte, by the account and by the kernel.
    private func isProvablyEmpty(_ half: RelayHalf, rule: Int) -> Bool {
        // Bytes of this connection still in the pipe: expected when a connection is cut
        // mid-stream. They are never handed on.
        guard half.inPipe == 0 else { return false }
        let queued = io.queuedBytes(inPipe: half.pipeRead)
        if queued == 0 { return true }
        // The account says empty and the kernel does not: a defect in the accounting.
        // A debug build stops here; a release build closes the pipe and says so.
        assertionFailure("a pipe accounted empty holds \(queued.map(String.init) ?? "an unknown number of") bytes")
        logger.error("a pipe accounted empty still held bytes; closed instead of reused", metadata: [
            "event": "rule.pipe_discarded", "rule": "\(setup.plan.ruleNames[rule])", "queued_bytes": "\(queued.map(String.init) ?? "unknown")",
        ])
        return false
    }
}
