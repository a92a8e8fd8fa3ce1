import Glibc
import PortunusResolver
import PortunusRing

/// DNS-named targets (SPEC.md §6) as the worker drives them. The worker reads its own
/// copy of each name's answers (``LocalName``), lock-free; when the copy has run out, the
/// connection waits in `resolving` (a state of its machine) while the resolver thread
/// looks the name up, with a timer of the connect timeout's length. Answers come back
/// through the worker's mailbox, whose eventfd the ring polls: no ring ever blocks on DNS.
extension Worker {
    /// The machine asks for addresses for `endpoint`'s name.
    func resolve(_ slot: Int32, _ endpoint: Int32) {
        let name = Int(setup.plan.endpointName[Int(endpoint)])
        switch names[name].use(nowMs: nowMs, staleMs: staleMs) {
        case .fresh:
            connectionEvent(slot, .resolved)
        case .stale:
            if names[name].wantsRefresh(nowMs: nowMs) { ask(name) }
            counters.add(.dnsFailures, rule: Int(slab[slot].rule), 1)
            connectionEvent(slot, .resolved)
        case .failed:
            counters.add(.dnsFailures, rule: Int(slab[slot].rule), 1)
            attemptFailed(slot, SystemError("resolve \(setup.plan.names[name]) (failed less than \(resolverNegativeMs) ms ago)", errno: EHOSTUNREACH), dns: true)
        case .wait:
            if !names[name].requested { ask(name) }
            startWaiting(slot, name)
        }
    }

    private func ask(_ name: Int) {
        names[name].requested = true
        setup.resolver!.request(name: name, worker: setup.index)
    }

    /// Links the connection into the name's wait list and arms its timer.
    private func startWaiting(_ slot: Int32, _ name: Int) {
        let tail = names[name].waitTail
        slab[slot].waitingName = Int32(name)
        slab[slot].waitPrevious = tail
        slab[slot].waitNext = -1
        if tail >= 0 { slab[tail].waitNext = slot } else { names[name].waitHead = slot }
        names[name].waitTail = slot
        io.prepareTimeout(connectTimeout, userData: userData(slot, .resolveTimer))
        slab[slot].inFlight += 1
    }

    private func unlink(_ slot: Int32) {
        let name = Int(slab[slot].waitingName)
        let previous = slab[slot].waitPrevious, next = slab[slot].waitNext
        if previous >= 0 { slab[previous].waitNext = next } else { names[name].waitHead = next }
        if next >= 0 { slab[next].waitPrevious = previous } else { names[name].waitTail = previous }
        slab[slot].waitingName = -1
        slab[slot].waitPrevious = -1
        slab[slot].waitNext = -1
    }

    /// The connection stops waiting before its timer fired (an answer came, or it is
    /// closing): out of the list, and the timer cancelled. Its completion is then not
    /// the live timer's (`cancelledTimers`), whether it reports the cancel or had fired.
    func stopWaiting(_ slot: Int32) {
        guard slab[slot].waitingName >= 0 else { return }
        unlink(slot)
        io.prepareCancel(userData(slot, .resolveTimer), userData: userData(slot, .cancel))
        slab[slot].inFlight += 1
        slab[slot].cancelledTimers += 1
    }

    func onResolveTimer(_ slot: Int32) {
        if slab[slot].cancelledTimers > 0 {
            slab[slot].cancelledTimers -= 1
            return
        }
        // The live timer fired: the connection is still waiting (leaving the list
        // any other way cancels the timer).
        precondition(slab[slot].waitingName >= 0, "resolve timer fired for slot \(slot) in state \(slab[slot].state), not waiting")
        let name = Int(slab[slot].waitingName)
        unlink(slot)
        let rule = Int(slab[slot].rule)
        counters.add(.dnsFailures, rule: rule, 1)
        if names[name].useAfterTimeout(nowMs: nowMs, staleMs: staleMs) == .stale {
            connectionEvent(slot, .resolved)
        } else {
            attemptFailed(slot, SystemError("resolve \(setup.plan.names[name]) (no answer within \(setup.settings.connectTimeoutMs) ms)", errno: ETIMEDOUT), dns: true)
        }
    }

    /// The mailbox's eventfd is readable: take the answers, update the copies, and move
    /// every connection waiting for those names on.
    func onNameAnswers() {
        guard let mailbox = setup.resolver?.mailboxes[setup.index] else { return }
        mailbox.take(into: &answers)
        for answer in answers {
            names[answer.name].apply(answer)
            wakeWaiters(answer.name)
        }
        armNameAnswers()
    }

    private func wakeWaiters(_ name: Int) {
        var slot = names[name].waitHead
        while slot >= 0 {
            let next = slab[slot].waitNext
            let rule = Int(slab[slot].rule)
            switch names[name].use(nowMs: nowMs, staleMs: staleMs) {
            case .fresh:
                stopWaiting(slot)
                connectionEvent(slot, .resolved)
            case .stale:
                stopWaiting(slot)
                counters.add(.dnsFailures, rule: rule, 1)
                connectionEvent(slot, .resolved)
            case .failed:
                stopWaiting(slot)
                counters.add(.dnsFailures, rule: rule, 1)
                attemptFailed(slot, SystemError("resolve \(setup.plan.names[name]) (lookup failed)", errno: EHOSTUNREACH), dns: true)
            case .wait:
                // An answer that does not serve (answers dropped from a full cache):
                // ask again; the waiters keep their timers.
                if !names[name].requested { ask(name) }
                return
            }
            slot = next
        }
    }

    /// Polls the mailbox's eventfd (re-armed after each batch of answers).
    func armNameAnswers() {
        guard let mailbox = setup.resolver?.mailboxes[setup.index] else { return }
        io.preparePoll(fd: mailbox.fd, events: .readable, userData: UserData(slot: 0, generation: 0, kind: OperationKind.nameAnswers.rawValue))
    }

    var staleMs: Int64 { setup.resolver?.settings.staleMs ?? 0 }
    var resolverNegativeMs: Int64 { setup.resolver?.settings.negativeMs ?? 0 }

    /// Address `index` of `endpoint` for `rule`, with the endpoint's port; nil if the
    /// name's answers have no such address (they may have changed since the first).
    func resolvedAddress(_ endpoint: Int32, _ index: Int32, rule: Int) -> SocketAddress? {
        let name = Int(setup.plan.endpointName[Int(endpoint)])
        guard let address = names[name].address(Int(index), preferIPv6: setup.plan.rulePreferIPv6[rule]) else { return nil }
        return SocketAddress(family: address.isIPv6 ? .ipv6 : .ipv4, addressWords: address.words, port: setup.plan.endpoints[Int(endpoint)].port)
    }
}
