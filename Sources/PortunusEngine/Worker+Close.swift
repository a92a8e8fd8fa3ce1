import Logging
import PortunusRing

/// Tearing a connection down: nothing is closed while the kernel may still use it.
/// `close()` does not cancel in-flight io_uring requests, so every request on both
/// sockets is cancelled first and the fds are closed only when the last completion
/// is in (IO_URING_NOTES.md).
extension Worker {
    /// Ends the connection now; `reset`: with RST.
    @inline(__always)
    func close(_ slot: Int32, reset: Bool) {
        connectionEvent(slot, .close(reset: reset))
    }

    /// The machine entered `closing`: cancel what is in flight, or release at once.
    func beginClose(_ slot: Int32) {
        // Waiting for a name: out of the wait list, its timer cancelled.
        stopWaiting(slot)
        if slab[slot].inFlight == 0 {
            connectionEvent(slot, .settled)
            return
        }
        cancelAll(slot, slab[slot].client)
        cancelAll(slot, slab[slot].upstream)
    }

    private func cancelAll(_ slot: Int32, _ fd: Int32) {
        guard fd >= 0 else { return }
        io.prepareCancelAll(fd: fd, userData: userData(slot, .cancel))
        slab[slot].inFlight += 1
    }

    /// After each completion of a closing connection: the last one settles it.
    @inline(__always)
    func settleIfDone(_ slot: Int32) {
        if slab[slot].inFlight == 0 && slab[slot].isClosing { connectionEvent(slot, .settled) }
    }

    /// Closes the sockets, keeps provably empty pipes for the next connection, frees the
    /// slot. Runs only when no operation of the slot is in flight, so the kernel holds no
    /// reference to its sockets, pipes, buffers or prelude bytes any more.
    func release(_ slot: Int32, reset: Bool) {
        precondition(slab[slot].inFlight == 0, "released a slot with operations in flight")
        givePipeBack(slot, .up)
        givePipeBack(slot, .down)
        let connection = slab[slot]
        closeSocket(connection.client, reset: reset)
        closeSocket(connection.upstream, reset: reset)
        counters.add(.connectionsActive, rule: Int(connection.rule), 0 &- 1)
        // Portunus's per-connection line, at debug: when debug is off (the default) this
        // is one level comparison; neither message nor metadata is built.
        logger.debug("connection closed", metadata: closedMetadata(slot, reset: reset))
        slab.release(slot)
    }

    /// `rule.conn_closed`'s fields (built only when debug is on): the client (the one an
    /// inbound PROXY header named, when it named one) and the connection's unique id.
    private func closedMetadata(_ slot: Int32, reset: Bool) -> Logger.Metadata {
        let connection = slab[slot]
        var metadata: Logger.Metadata = [
            "event": "rule.conn_closed", "rule": "\(setup.plan.ruleNames[Int(connection.rule)])", "reset": .stringConvertible(reset),
        ]
        if let source = inboundHeader(slot)?.source {
            metadata["client"] = "\(source)"
            metadata["via"] = "\(io.peerAddress(connection.client).map { "\($0)" } ?? "gone")"
        } else if let peer = io.peerAddress(connection.client) {
            metadata["client"] = "\(peer)"
        }
        let id = connectionID(slot)
        metadata["unique_id"] = "\(Self.hex(id.0))\(Self.hex(id.1))"
        return metadata
    }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    private func closeSocket(_ fd: Int32, reset: Bool) {
        guard fd >= 0 else { return }
        if reset { io.closeWithReset(fd) } else { io.close(fd) }
    }
}
