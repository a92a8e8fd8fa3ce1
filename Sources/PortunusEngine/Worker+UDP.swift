import Glibc
import PortunusRing

/// UDP forwarding (SPEC.md §7). Each of the worker's UDP sockets has one multishot
/// recvmsg armed on the datagram buffer ring: one completion per datagram, one datagram
/// per buffer, never cut (a datagram too long for a buffer is dropped and counted). A
/// flow per (socket, client address) owns a connected upstream socket with its own
/// multishot recvmsg; client datagrams are sent to it from the buffer they arrived in,
/// and its replies leave through the listen socket to the client, from theirs.
///
/// Ownership: a datagram buffer is the worker's from the completion that names it until
/// it is recycled, which happens after its one send completes (or at once, when the
/// datagram is dropped). A flow's record and upstream socket are released only when
/// nothing of it is in flight (`inFlight`), so a late completion never meets a reused
/// flow; its generation is in every flow `user_data`.
extension Worker {
    /// Arms every UDP socket and the flow sweep.
    func armUDP() {
        for socket in udpSockets.indices { armDatagramRecv(socket) }
        armFlowSweep()
    }

    private func armDatagramRecv(_ socket: Int) {
        io.prepareDatagramRecv(fd: udpSockets[socket], userData: UserData(slot: UInt32(socket), generation: 0, kind: OperationKind.udpRecv.rawValue))
        udpArmed += 1
    }

    private func flowUserData(_ flow: Int32, _ kind: OperationKind) -> UserData {
        UserData(slot: UInt32(flow), generation: flows!.flows[Int(flow)].generation, kind: kind.rawValue)
    }

    /// The flow behind `userData` if it is still the same one.
    private func resolveFlow(_ userData: UserData) -> Int32? {
        guard let table = flows else { return nil }
        let index = Int(userData.slot)
        guard index < table.highWater, table.flows[index].inUse, table.flows[index].generation == userData.generation else { return nil }
        return Int32(index)
    }

    /// Every UDP completion comes here (its buffer is from the datagram ring, not the
    /// stream one).
    func onUDP(_ kind: OperationKind, _ direction: Direction, _ completion: Completion) {
        switch kind {
        case .udpRecv: onListenDatagram(completion)
        case .udpFlowRecv: onUpstreamDatagram(completion)
        case .udpSend: onDatagramSent(direction, completion)
        case .udpCancel:
            if let flow = resolveFlow(completion.userData) {
                flows!.flows[Int(flow)].inFlight -= 1
                flowOperationEnded(flow)
            }
        case .udpRetry:
            udpRetries -= 1
            let socket = Int(completion.userData.slot)
            if stopping { closeUDPSocket(socket) } else { armDatagramRecv(socket) }
        case .udpSweep: onFlowSweep()
        default: preconditionFailure("unexpected UDP operation kind \(kind)")
        }
    }

    // MARK: client → upstream

    private func onListenDatagram(_ completion: Completion) {
        let socket = Int(completion.userData.slot)
        if !completion.hasMore {
            udpArmed -= 1
            if stopping {
                closeUDPSocket(socket)
            } else if completion.result < 0 {
                // No buffer free (ENOBUFS), or the kernel short of memory: try again
                // shortly rather than in a loop; datagrams wait in the socket's buffer.
                io.prepareTimeout(udpRetryDelay, userData: UserData(slot: UInt32(socket), generation: 0, kind: OperationKind.udpRetry.rawValue))
                udpRetries += 1
            } else {
                armDatagramRecv(socket)
            }
        }
        guard let bid = completion.bufferID else { return }
        io.takeDatagramBuffer(bid)
        let planListener = setup.udpListenerPlanIndex[socket]
        let rule = setup.plan.udpListeners[planListener].rule
        guard let datagram = wholeDatagram(bid, completion, rule: rule, wanted: !stopping), let client = datagram.source else { return }
        let flow: Int32
        if let existing = flows!.find(listener: Int32(socket), client: client) {
            guard !flows!.flows[Int(existing)].closing else {
                // Its flow is being torn down: this datagram goes; the next one makes a new flow.
                counters.add(.flowsPendingDrops, rule: rule, 1)
                recycleDatagram(bid)
                return
            }
            flow = existing
        } else {
            // Replies leave from the address this first datagram was sent to.
            guard let made = openFlow(socket: socket, listener: planListener, rule: rule, client: client, local: datagram.destination) else {
                recycleDatagram(bid)
                return
            }
            flow = made
        }
        flows!.flows[Int(flow)].lastActiveMs = nowMs
        send(bid, of: flow, .up, offset: datagram.payloadOffset, length: datagram.payloadLength)
    }

    /// The datagram a recv completion put in buffer `bid`, if it is `wanted`, whole and
    /// from an IPv4 or IPv6 source; otherwise the buffer goes back (a cut one counted).
    private func wholeDatagram(_ bid: UInt16, _ completion: Completion, rule: Int, wanted: Bool) -> ReceivedDatagram? {
        guard wanted, completion.result >= 0, let datagram = io.datagram(in: bid, completionResult: completion.result),
              datagram.source != nil else {
            recycleDatagram(bid)
            return nil
        }
        guard !datagram.truncated else {
            counters.add(.emsgsize, rule: rule, 1)
            recycleDatagram(bid)
            return nil
        }
        return datagram
    }

    /// Sends datagram buffer `bid`'s payload for `flow`: `.up` on its connected upstream
    /// socket, `.down` through its listen socket to its client, from the local address
    /// the client wrote to.
    private func send(_ bid: UInt16, of flow: Int32, _ direction: Direction, offset: Int, length: Int) {
        let record = flows!.flows[Int(flow)]
        let fd = direction == .up ? record.upstream : udpSockets[Int(record.listener)]
        sendFlow[Int(bid)] = flow
        io.prepareDatagramSend(fd: fd, to: direction == .up ? nil : record.client, source: direction == .up ? nil : record.local,
                               bufferID: bid, offset: offset, length: length,
                               userData: UserData(slot: UInt32(bid), generation: 0, kind: OperationKind.udpSend.raw(direction)))
        flows!.flows[Int(flow)].inFlight += 1
    }

    /// A new client: within its rule's `udp_max_flows`, with the first target (Healthy
    /// before Failed, priority order) whose address is known and whose socket opens.
    /// nil: the datagram is dropped (and counted).
    private func openFlow(socket: Int, listener: Int, rule: Int, client: SocketAddress, local: SocketAddress?) -> Int32? {
        guard setup.flowBudget.reserve(rule) else {
            counters.add(.flowsDroppedOverflow, rule: rule, 1)
            return nil
        }
        let range = setup.plan.udpListeners[listener].endpoints
        for pass in 0..<2 {
            for endpoint in range where setup.health.isFailed(endpoint) == (pass == 1) {
                let address: SocketAddress
                switch flowAddress(Int32(endpoint), rule: rule) {
                case let .address(found): address = found
                case .failed: continue
                case .pending:
                    // The name is being looked up: this datagram goes (the flow keeps the
                    // target of its priority); the client's next one finds the answer.
                    setup.flowBudget.release(rule)
                    counters.add(.flowsPendingDrops, rule: rule, 1)
                    return nil
                }
                let upstream: Int32
                do {
                    upstream = try io.openDatagram(to: address)
                } catch {
                    counters.add(.connectFailures, rule: rule, 1)
                    // Out of fds or memory here is not the target's fault.
                    if ![EMFILE, ENFILE, ENOMEM, ENOBUFS].contains(error.errno),
                       let transition = setup.health.recordFailure(endpoint, nowMs: nowMs) {
                        healthChanged(rule: rule, endpoint: Int32(endpoint), transition)
                    }
                    continue
                }
                guard let flow = flows!.insert(listener: Int32(socket), client: client, local: local, rule: Int32(rule), nowMs: nowMs) else {
                    io.close(upstream)
                    setup.flowBudget.release(rule)
                    counters.add(.flowsDroppedOverflow, rule: rule, 1)
                    return nil
                }
                flows!.flows[Int(flow)].upstream = upstream
                flows!.flows[Int(flow)].endpoint = Int32(endpoint)
                io.prepareDatagramRecv(fd: upstream, userData: flowUserData(flow, .udpFlowRecv))
                flows!.flows[Int(flow)].inFlight += 1
                counters.add(.flowsActive, rule: rule, 1)
                logger.debug("UDP flow opened", metadata: [
                    "event": "rule.udp_flow_opened", "rule": "\(setup.plan.ruleNames[rule])", "client": "\(client)",
                    "target": "\(setup.plan.endpointLabels[endpoint])",
                ])
                return flow
            }
        }
        setup.flowBudget.release(rule)
        return nil
    }

    private enum FlowAddress {
        case address(SocketAddress)
        /// The name does not resolve now: the next target.
        case failed
        /// The name is being looked up.
        case pending
    }

    /// The address a new flow to `endpoint` dials: the literal, or the name's first
    /// address from this worker's cache (asking the resolver when it has none: nil).
    private func flowAddress(_ endpoint: Int32, rule: Int) -> FlowAddress {
        let name = Int(setup.plan.endpointName[Int(endpoint)])
        guard name >= 0 else { return .address(setup.plan.endpoints[Int(endpoint)]) }
        switch useName(name, rule: rule) {
        case .fresh, .stale: break
        case .failed: return .failed
        case .wait: return .pending
        }
        let preferIPv6 = setup.plan.rulePreferIPv6[rule]
        guard let i = names[name].storageIndex(0, preferIPv6: preferIPv6, dead: names[name].deadAddresses(nowMs: nowMs)) else { return .failed }
        return .address(names[name].socketAddress(i, port: setup.plan.endpoints[Int(endpoint)].port))
    }

    // MARK: upstream → client

    private func onUpstreamDatagram(_ completion: Completion) {
        let bid = completion.bufferID
        if let bid { io.takeDatagramBuffer(bid) }
        guard let flow = resolveFlow(completion.userData) else {
            if let bid { recycleDatagram(bid) }
            return
        }
        let f = Int(flow)
        let rule = Int(flows!.flows[f].rule)
        if !completion.hasMore {
            flows!.flows[f].inFlight -= 1
            if !flows!.flows[f].closing {
                if Self.isICMPError(completion.result) {
                    counters.add(.icmpEvict, rule: rule, 1)
                    if let transition = setup.health.recordFailure(Int(flows!.flows[f].endpoint), nowMs: nowMs) {
                        healthChanged(rule: rule, endpoint: flows!.flows[f].endpoint, transition)
                    }
                    evict(flow)
                } else if completion.result >= 0 || completion.result == -ENOBUFS {
                    // The kernel ended the multishot (no buffer, or its own reasons):
                    // armed again, after a buffer comes back when there was none.
                    if completion.result == -ENOBUFS && !io.datagramBufferFree {
                        flowsAwaitingBuffers.append((flow, flows!.flows[f].generation))
                    } else {
                        io.prepareDatagramRecv(fd: flows!.flows[f].upstream, userData: flowUserData(flow, .udpFlowRecv))
                        flows!.flows[f].inFlight += 1
                    }
                } else {
                    evict(flow)
                }
            }
        }
        defer { flowOperationEnded(flow) }
        guard let bid else { return }
        guard let datagram = wholeDatagram(bid, completion, rule: rule, wanted: !flows!.flows[f].closing) else { return }
        flows!.flows[f].lastActiveMs = nowMs
        if let transition = setup.health.recordSuccess(Int(flows!.flows[f].endpoint)) { healthChanged(rule: rule, endpoint: flows!.flows[f].endpoint, transition) }
        send(bid, of: flow, .down, offset: datagram.payloadOffset, length: datagram.payloadLength)
    }

    private func onDatagramSent(_ direction: Direction, _ completion: Completion) {
        let bid = UInt16(truncatingIfNeeded: completion.userData.slot)
        let flow = sendFlow[Int(bid)]
        recycleDatagram(bid)
        let f = Int(flow)
        precondition(flows!.flows[f].inUse && flows!.flows[f].inFlight > 0, "datagram send for flow \(flow) with nothing in flight")
        flows!.flows[f].inFlight -= 1
        defer { flowOperationEnded(flow) }
        let rule = Int(flows!.flows[f].rule)
        let result = completion.result
        if result >= 0 {
            counters.add(direction == .up ? .datagramsIn : .datagramsOut, rule: rule, 1)
            counters.add(direction == .up ? .bytesIn : .bytesOut, rule: rule, UInt64(result))
            return
        }
        switch -result {
        case EMSGSIZE: counters.add(.emsgsize, rule: rule, 1)
        case EAGAIN: counters.add(.wouldblock, rule: rule, 1)
        case ECANCELED:
            break   // the flow is being torn down
        default:
            if direction == .up && Self.isICMPError(result) && !flows!.flows[f].closing {
                counters.add(.icmpEvict, rule: rule, 1)
                evict(flow)
            } else {
                counters.add(.sendDropped, rule: rule, 1)
            }
        }
    }

    /// ECONNREFUSED, ECONNRESET, ECONNABORTED, EHOSTUNREACH, ENETUNREACH: what an ICMP
    /// error on a connected UDP socket reports. The flow is evicted; the client's next
    /// datagram builds a new one.
    static func isICMPError(_ result: Int32) -> Bool {
        switch -result {
        case ECONNREFUSED, ECONNRESET, ECONNABORTED, EHOSTUNREACH, ENETUNREACH: return true
        default: return false
        }
    }

    // MARK: buffers, eviction, the sweep

    private func recycleDatagram(_ bid: UInt16) {
        io.recycleDatagramBuffer(bid)
        // Every flow whose recv stopped for want of a buffer is armed again now (an armed
        // recv takes a buffer only when a datagram comes; one that finds none again
        // comes back to this list).
        while let (flow, generation) = flowsAwaitingBuffers.popLast() {
            let f = Int(flow)
            guard flows!.flows[f].inUse, flows!.flows[f].generation == generation, !flows!.flows[f].closing else { continue }
            io.prepareDatagramRecv(fd: flows!.flows[f].upstream, userData: flowUserData(flow, .udpFlowRecv))
            flows!.flows[f].inFlight += 1
        }
    }

    /// Ends a flow: its upstream recv is cancelled; once nothing of it is in flight the
    /// socket is closed and the flow (and its place in the rule's cap) freed.
    func evict(_ flow: Int32) {
        let f = Int(flow)
        guard !flows!.flows[f].closing else { return }
        flows!.flows[f].closing = true
        io.prepareCancelAll(fd: flows!.flows[f].upstream, userData: flowUserData(flow, .udpCancel))
        flows!.flows[f].inFlight += 1
    }

    /// After each completion of a flow: a closing flow with nothing in flight is freed.
    private func flowOperationEnded(_ flow: Int32) {
        let f = Int(flow)
        if flows!.flows[f].closing && flows!.flows[f].inFlight == 0 {
            let rule = Int(flows!.flows[f].rule)
            io.close(flows!.flows[f].upstream)
            logger.debug("UDP flow closed", metadata: [
                "event": "rule.udp_flow_closed", "rule": "\(setup.plan.ruleNames[rule])", "client": "\(flows!.flows[f].client)",
            ])
            flows!.remove(flow)
            setup.flowBudget.release(rule)
            counters.add(.flowsActive, rule: rule, 0 &- 1)
        }
    }

    /// Period of the flow sweep: a quarter of the shortest UDP idle window, so flows go
    /// 1–1.25 × their window after their last datagram.
    static func flowSweepMs(_ plan: ForwardingPlan) -> Int64? {
        let windows = plan.udpListeners.map { plan.ruleUDPIdleMs[$0.rule] }
        guard let shortest = windows.min() else { return nil }
        return max(shortest / 4, 50)
    }

    private func armFlowSweep() {
        guard let sweep = flowSweep, !stopping else { return }
        io.prepareTimeout(sweep, userData: UserData(slot: 0, generation: 0, kind: OperationKind.udpSweep.rawValue))
    }

    private func onFlowSweep() {
        guard let table = flows, !stopping else { return }
        for flow in table.idle(nowMs: nowMs, windowMs: { setup.plan.ruleUDPIdleMs[Int($0)] }) { evict(flow) }
        armFlowSweep()
    }

    /// On stop: UDP stops at once (as Portunus): the sockets' recvs are cancelled (each
    /// socket is closed when its recv has ended) and every flow is evicted.
    func stopUDP() {
        for fd in udpSockets where fd >= 0 {
            io.prepareCancelAll(fd: fd, userData: UserData(slot: 0, generation: 0, kind: OperationKind.stopAccept.rawValue))
        }
        for socket in udpSockets.indices {
            io.prepareCancel(UserData(slot: UInt32(socket), generation: 0, kind: OperationKind.udpRetry.rawValue),
                             userData: UserData(slot: 0, generation: 0, kind: OperationKind.stopAccept.rawValue))
        }
        guard let table = flows else { return }
        for f in 0..<table.highWater where table.flows[f].inUse { evict(Int32(f)) }
    }

    private func closeUDPSocket(_ socket: Int) {
        guard udpSockets[socket] >= 0 else { return }
        io.close(udpSockets[socket])
        udpSockets[socket] = -1
    }
}
