import Glibc
import Logging
import PortunusRing

/// The connection's machine (``Connection``) as the worker drives it: dialling (a socket
/// per attempt, connect linked to a link timeout, the next address of the target or the
/// next target on failure), target health, the start of the relay, and the steps that
/// end a connection.
extension Worker {
    @inline(__always)
    func userData(_ slot: Int32, _ kind: OperationKind, _ direction: Direction = .up) -> UserData {
        slab.userData(slot, kind.raw(direction))
    }

    /// Feeds one event to the connection's machine and carries out its operation.
    func connectionEvent(_ slot: Int32, _ event: Connection.Event) {
        let attempt = slab[slot].state.attempt
        let operation = slab[slot].handle(event, setup.plan)
        if operation == .startRelay, let attempt { targetSucceeded(slot, attempt.endpoint) }
        perform(operation, slot)
    }

    private func perform(_ operation: Connection.Operation, _ slot: Int32) {
        switch operation {
        case .none: break
        case .readProxyHeader: readProxyHeader(slot)
        case let .resolve(endpoint): resolve(slot, endpoint)
        case let .dial(endpoint, address): dial(slot, endpoint, address)
        case let .sendPrelude(endpoint): sendPrelude(slot, endpoint)
        case .startRelay: startRelay(slot)
        case let .shutdownWrite(direction): io.shutdownWrite(destination(slot, direction))
        case .giveUp, .beginClose: beginClose(slot)
        case let .release(reset): release(slot, reset: reset)
        }
    }

    /// Opens a socket and starts a connect to address `address` of plan endpoint `endpoint`.
    private func dial(_ slot: Int32, _ endpoint: Int32, _ address: Int32) {
        var table = endpoints, index = Int(endpoint), family = endpointFamilies[index]
        if setup.plan.endpointName[index] >= 0 {
            guard let (resolved, _) = resolvedAddress(slot, endpoint, address) else {
                // The name's answers changed since and have no such address.
                attemptFailed(slot, SystemError("connect (no address \(address + 1) for \(setup.plan.endpointLabels[index]) any more)", errno: EHOSTUNREACH), dns: true)
                return
            }
            // Ownership: the slot's entry, rewritten only here, while no connect of the
            // slot is in flight.
            table = dialAddresses!
            table.set(Int(slot), resolved)
            index = Int(slot)
            family = resolved.family
        }
        let fd: Int32
        do {
            fd = try io.openStream(family)
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
        io.prepareConnect(fd: fd, to: table, index: index, userData: userData(slot, .connect), options: .link)
        io.prepareLinkTimeout(connectTimeout, userData: userData(slot, .connectTimeout))
        slab[slot].inFlight += 2
    }

    func onConnect(_ slot: Int32, _ result: Int32) {
        if case let .dialling(endpoint, address) = slab[slot].state, setup.plan.endpointName[Int(endpoint)] >= 0 {
            markAddress(slot, endpoint, address, failed: result != 0)
        }
        if result == 0 {
            connectionEvent(slot, .connected)
            return
        }
        // -ECANCELED here means the link timeout fired first.
        attemptFailed(slot, result == -ECANCELED
            ? SystemError("connect (timed out after \(setup.settings.connectTimeoutMs) ms)", errno: ETIMEDOUT)
            : SystemError("connect", result: result))
    }

    /// The attempt failed: its socket is closed (reset when part of a PROXY header may
    /// sit in it: `inPrelude`), the failure counted, and the machine moves on to the
    /// target's next address, the next target, or gives up. `dns`: the target's name did
    /// not resolve (no socket was opened). After the close began, nothing is done here:
    /// the socket goes with the slot, once the cancels naming it have completed.
    func attemptFailed(_ slot: Int32, _ error: SystemError, inPrelude: Bool = false, dns: Bool = false) {
        var (failed, address) = slab[slot].state.attempt ?? (-1, -1)
        if case let .resolving(endpoint) = slab[slot].state { failed = endpoint }
        let rule = Int(slab[slot].rule)
        let nextAddress = address >= 0 && setup.plan.endpointName[Int(failed)] >= 0
            && resolvedAddress(slot, failed, address + 1) != nil
        let operation = slab[slot].handle(.attemptFailed(nextAddress: nextAddress), setup.plan)
        guard operation != .none else { return }
        if slab[slot].upstream >= 0 {
            // The upstream may hold part of a header: reset it rather than let it parse one.
            if inPrelude { io.closeWithReset(slab[slot].upstream) } else { io.close(slab[slot].upstream) }
            slab[slot].upstream = -1
        }
        if !dns { counters.add(.connectFailures, rule: rule, 1) }
        if inPrelude { counters.add(.preludeFailures, rule: rule, 1) }
        if !nextAddress { targetFailed(slot, failed) }
        let target = targetLabel(slot, failed, address)
        let next: Logger.Message = switch operation {
        case .dial, .resolve: nextAddress ? "address failed, trying the target's next address" : "target failed, trying the next one"
        default: "target failed, none left"
        }
        // Every failed attempt (debug); the connection's end, when none is left, below.
        logger.debug(next, metadata: [
            "event": "rule.target.dial_failed", "rule": "\(setup.plan.ruleNames[rule])", "target": "\(target)", "error": "\(error)",
        ])
        switch operation {
        case .dial, .resolve:
            break
        default:
            if let suppressed = failureLog.admit(.dialFailed, rule: rule) {
                logger.error("all targets failed; client closed", metadata: [
                    "event": "rule.conn_error", "rule": "\(setup.plan.ruleNames[rule])", "target": "\(target)",
                    "error": "\(error)", "suppressed": .stringConvertible(suppressed),
                ])
            }
        }
        perform(operation, slot)
    }

    /// `db.internal:5432 (10.0.0.7)` for a DNS-named target, `10.0.0.5:22` for an address.
    private func targetLabel(_ slot: Int32, _ endpoint: Int32, _ address: Int32) -> String {
        let label = setup.plan.endpointLabels[Int(endpoint)]
        guard address >= 0, setup.plan.endpointName[Int(endpoint)] >= 0,
              let (resolved, _) = resolvedAddress(slot, endpoint, address) else { return label }
        return "\(label) (\(resolved))"
    }

    private func targetFailed(_ slot: Int32, _ endpoint: Int32) {
        guard let transition = setup.health.recordFailure(Int(endpoint), nowMs: nowMs) else { return }
        healthChanged(rule: Int(slab[slot].rule), endpoint: endpoint, transition)
    }

    private func targetSucceeded(_ slot: Int32, _ endpoint: Int32) {
        guard let transition = setup.health.recordSuccess(Int(endpoint)) else { return }
        healthChanged(rule: Int(slab[slot].rule), endpoint: endpoint, transition)
    }

    /// Logged once, by the worker whose attempt made the change.
    func healthChanged(rule: Int, endpoint: Int32, _ transition: TargetHealth.Transition) {
        if transition == .failed { counters.add(.targetFailovers, rule: rule, 1) }
        let (from, to) = transition == .failed ? ("healthy", "failed") : ("failed", "healthy")
        let metadata: Logger.Metadata = [
            "event": "rule.target.health_changed", "rule": "\(setup.plan.ruleNames[rule])",
            "target": "\(setup.plan.endpointLabels[Int(endpoint)])", "from": "\(from)", "to": "\(to)",
        ]
        if transition == .failed {
            logger.warning("target health changed", metadata: metadata)
        } else {
            logger.info("target health changed", metadata: metadata)
        }
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
