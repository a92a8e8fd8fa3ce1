import Glibc
import PortunusRing

/// The connection's machine (``Connection``) as the worker drives it: dialling (a socket
/// per attempt, connect linked to a link timeout, the next target in priority order on
/// failure), the start of the relay, and the steps that end a connection.
extension Worker {
    @inline(__always)
    func userData(_ slot: Int32, _ kind: OperationKind, _ direction: Direction = .up) -> UserData {
        slab.userData(slot, kind.raw(direction))
    }

    /// Feeds one event to the connection's machine and carries out its operation.
    func connectionEvent(_ slot: Int32, _ event: Connection.Event) {
        perform(slab[slot].handle(event, setup.plan), slot)
    }

    private func perform(_ operation: Connection.Operation, _ slot: Int32) {
        switch operation {
        case .none: break
        case let .dial(endpoint): dial(slot, endpoint)
        case let .sendPrelude(endpoint): sendPrelude(slot, endpoint)
        case .startRelay: startRelay(slot)
        case let .shutdownWrite(direction): io.shutdownWrite(destination(slot, direction))
        case .giveUp, .beginClose: beginClose(slot)
        case let .release(reset): release(slot, reset: reset)
        }
    }

    /// Opens a socket and starts a connect to plan endpoint `endpoint`.
    private func dial(_ slot: Int32, _ endpoint: Int32) {
        let fd: Int32
        do {
            fd = try io.openStream(endpointFamilies[Int(endpoint)])
        } catch {
            attemptFailed(slot, error)
            return
        }
        // Ownership: the slot's until this attempt fails (closed in `attemptFailed`, when
        // the connect has completed and only its link timeout, which names no fd, may
        // still be pending) or the slot is released.
        slab[slot].upstream = fd
        // Connect and its time box go in one submission, or the link would be lost.
        io.reserve(2)
        io.prepareConnect(fd: fd, to: endpoints, index: Int(endpoint), userData: userData(slot, .connect), options: .link)
        io.prepareLinkTimeout(connectTimeout, userData: userData(slot, .connectTimeout))
        slab[slot].inFlight += 2
    }

    func onConnect(_ slot: Int32, _ result: Int32) {
        if result == 0 {
            connectionEvent(slot, .connected)
            return
        }
        // -ECANCELED here means the link timeout fired first.
        attemptFailed(slot, result == -ECANCELED
            ? SystemError("connect (timed out after \(setup.settings.connectTimeoutMs) ms)", errno: ETIMEDOUT)
            : SystemError("connect", result: result))
    }

    /// The attempt on the current target failed: its socket is closed (reset when part of
    /// a PROXY header may sit in it: `inPrelude`), the failure counted, and the machine moves on to
    /// the next target or gives up. After the close began, nothing is done here: the
    /// socket goes with the slot, once the cancels naming it have completed.
    func attemptFailed(_ slot: Int32, _ error: SystemError, inPrelude: Bool = false) {
        let failed: Int32
        switch slab[slot].state {
        case let .dialling(endpoint), let .sendingPrelude(endpoint): failed = endpoint
        default: failed = -1
        }
        let operation = slab[slot].handle(.attemptFailed, setup.plan)
        guard operation != .none else { return }
        if slab[slot].upstream >= 0 {
            // The upstream may hold part of a header: reset it rather than let it parse one.
            if inPrelude { io.closeWithReset(slab[slot].upstream) } else { io.close(slab[slot].upstream) }
            slab[slot].upstream = -1
        }
        let rule = Int(slab[slot].rule)
        counters.add(.connectFailures, rule: rule, 1)
        if inPrelude { counters.add(.preludeFailures, rule: rule, 1) }
        if case .dial = operation {
            logger.debug("target failed, trying the next one", metadata: [
                "rule": "\(setup.plan.ruleNames[rule])", "target": "\(setup.plan.endpoints[Int(failed)])", "error": "\(error)",
            ])
        } else if let suppressed = failureLog.admit(.dialFailed, rule: rule) {
            logger.error("all targets failed; client closed", metadata: [
                "rule": "\(setup.plan.ruleNames[rule])", "target": "\(setup.plan.endpoints[Int(failed)])",
                "error": "\(error)", "suppressed": "\(suppressed)",
            ])
        }
        perform(operation, slot)
    }

    /// The upstream is connected (and has its header): both directions start relaying,
    /// on the path the relay mode gives them. TCP_NODELAY is already set on both
    /// sockets: the client's is inherited from the listener, the upstream's was set at creation.
    private func startRelay(_ slot: Int32) {
        slab[slot].lastActiveMs = nowMs
        let path: RelayHalf.Path = setup.settings.relay == .splice ? .splice(returnsToBuffers: false) : .buffers(fullStreak: 0)
        slab[slot].up = RelayHalf(path: path)
        slab[slot].down = RelayHalf(path: path)
        drive(slot, .up, .start)
        drive(slot, .down, .start)
    }
}
