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
        switch useName(name, rule: Int(slab[slot].rule)) {
        case .fresh, .stale:
            resolved(slot, name)
        case .failed:
            attemptFailed(slot, SystemError("resolve \(setup.plan.names[name]) (failed less than \(resolverNegativeMs) ms ago)", errno: EHOSTUNREACH), dns: true)
        case .wait:
            startWaiting(slot, name)
        }
    }

    /// What a connection or a new UDP flow of `rule` does with name `name` now, with
    /// its side effects: stale or failed uses counted in `dns_failures`, a background
    /// refresh asked for while stale answers serve, a lookup asked for before a wait.
    func useName(_ name: Int, rule: Int) -> LocalName.Use {
        let use = names[name].use(nowMs: nowMs, staleMs: staleMs)
        switch use {
        case .fresh: break
        case .stale:
            if names[name].wantsRefresh(nowMs: nowMs) { ask(name) }
            counters.add(.dnsFailures, rule: rule, 1)
        case .failed:
            counters.add(.dnsFailures, rule: rule, 1)
        case .wait:
            if !names[name].requested { ask(name) }
        }
        return use
    }

    /// The name has addresses: the connection fixes its order (recently failed ones
    /// last) and dials the first.
    private func resolved(_ slot: Int32, _ name: Int) {
        slab[slot].deadAddresses = names[name].deadAddresses(nowMs: nowMs)
        connectionEvent(slot, .resolved)
    }

    func ask(_ name: Int) {
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
            resolved(slot, name)
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
                resolved(slot, name)
            case .stale:
                stopWaiting(slot)
                counters.add(.dnsFailures, rule: rule, 1)
                resolved(slot, name)
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

    /// Address `index` (in the connection's dialling order) of `endpoint`, with the
    /// endpoint's port, and its position in the name's answers; nil if the answers have
    /// no such address (they may have changed since the connection started on them).
    func resolvedAddress(_ slot: Int32, _ endpoint: Int32, _ index: Int32) -> (address: SocketAddress, storage: Int)? {
        let name = Int(setup.plan.endpointName[Int(endpoint)])
        let preferIPv6 = setup.plan.rulePreferIPv6[Int(slab[slot].rule)]
        guard let i = names[name].storageIndex(Int(index), preferIPv6: preferIPv6, dead: slab[slot].deadAddresses) else { return nil }
        return (names[name].socketAddress(i, port: setup.plan.endpoints[Int(endpoint)].port), i)
    }

    /// A connect to address `index` of `endpoint`'s name failed (`failed`) or went
    /// through: marks it to be dialled last for a while, or clears the mark.
    func markAddress(_ slot: Int32, _ endpoint: Int32, _ index: Int32, failed: Bool) {
        let name = Int(setup.plan.endpointName[Int(endpoint)])
        guard name >= 0, let (address, i) = resolvedAddress(slot, endpoint, index),
              slab[slot].upstream < 0 || dialAddresses![Int(slot)] == address else { return }
        names[name].failedAtMs[i] = failed ? max(nowMs, 1) : 0
    }
}
