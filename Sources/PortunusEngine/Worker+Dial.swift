import Glibc
import PortunusRing

/// Upstream dialling: a socket per attempt, connect linked to a link timeout, the
/// next endpoint (in priority order) on failure.
extension Worker {
    @inline(__always)
    func userData(_ slot: Int32, _ kind: OperationKind, _ direction: Direction = .up) -> UserData {
        slab.userData(slot, kind.raw(direction))
    }

    /// Starts a connect to the slot's current endpoint.
    func dial(_ slot: Int32) {
        let endpoint = Int(slab[slot].endpoint)
        let fd: Int32
        do {
            fd = try io.openStream(endpointFamilies[endpoint])
        } catch {
            dialFailed(slot, error)
            return
        }
        // Ownership: the slot's until its connect fails (closed in `onConnect`, when the
        // connect has completed and only its link timeout, which names no fd, may still
        // be pending) or the slot is released.
        slab[slot].upstream = fd
        // Connect and its time box go in one submission, or the link would be lost.
        io.reserve(2)
        io.prepareConnect(fd: fd, to: endpoints, index: endpoint, userData: userData(slot, .connect), options: .link)
        io.prepareLinkTimeout(connectTimeout, userData: userData(slot, .connectTimeout))
        slab[slot].inFlight += 2
    }

    func onConnect(_ slot: Int32, _ result: Int32) {
        guard slab[slot].state == .connecting else { finishIfIdle(slot); return }
        if result == 0 {
            if setup.plan.endpointPrelude[Int(slab[slot].endpoint)] != nil {
                sendPrelude(slot)
            } else {
                established(slot)
            }
            return
        }
        // -ECANCELED here means the link timeout fired first.
        let error = result == -ECANCELED
            ? SystemError("connect (timed out after \(setup.settings.connectTimeoutMs) ms)", errno: ETIMEDOUT)
            : SystemError("connect", result: result)
        io.close(slab[slot].upstream)
        slab[slot].upstream = -1
        dialFailed(slot, error)
    }

    /// Counts the failed dial and tries the next endpoint, or closes the client when
    /// none is left.
    func dialFailed(_ slot: Int32, _ error: SystemError) {
        let rule = Int(slab[slot].rule)
        let endpoint = Int(slab[slot].endpoint)
        counters.add(.connectFailures, rule: rule, 1)
        let listener = setup.plan.listeners[Int(slab[slot].listener)]
        if endpoint + 1 < listener.endpoints.upperBound {
            logger.debug("target failed, trying the next one", metadata: [
                "rule": "\(setup.plan.ruleNames[rule])", "target": "\(setup.plan.endpoints[endpoint])", "error": "\(error)",
            ])
            slab[slot].endpoint += 1
            dial(slot)
            return
        }
        if let suppressed = failureLog.admit(.dialFailed, rule: rule) {
            logger.error("all targets failed; client closed", metadata: [
                "rule": "\(setup.plan.ruleNames[rule])", "target": "\(setup.plan.endpoints[endpoint])",
                "error": "\(error)", "suppressed": "\(suppressed)",
            ])
        }
        close(slot, reset: false)
    }

    /// The upstream is connected: both directions start relaying.
    /// TCP_NODELAY is already set on both sockets: the client's is inherited from the
    /// listener, the upstream's was set at creation.
    func established(_ slot: Int32) {
        slab[slot].state = .relaying
        slab[slot].lastActiveMs = nowMs
        if setup.settings.relay == .splice {
            slab[slot].up.spliced = true
            slab[slot].down.spliced = true
        }
        startRead(slot, .up, pollFirst: false)
        startRead(slot, .down, pollFirst: false)
    }
}
