import Glibc
import PortunusConfig
import PortunusProxyProtocol
import PortunusRing

/// PROXY protocol on the way in (`accept_proxy`): a load balancer in front prepends a
/// header naming the real client, and the connection is that client's from then on.
///
/// The header is read before any dial, without taking a byte of payload off the
/// socket: a `recv(MSG_PEEK)` shows what has arrived (into the slot's inbound area,
/// after the bytes already taken), ``ProxyHeaderReader`` says how many of those bytes
/// are header, and a plain `recv` of exactly that many takes them; again until the
/// header is complete, so a header split across segments is read as it comes. The
/// rule's `accept_proxy_timeout_secs` bounds the whole header (the idle sweep enforces
/// it). Malformed, of a version the rule does not take, too long, too slow, or a
/// client gone first: the client is reset, counted (`proxy_in_rejected`) and logged
/// (rate-limited), and nothing was dialled.
///
/// The header's bytes stay in the inbound area for the connection's life: the outbound
/// header of each target is built from them (the client and destination they name,
/// their TLVs), so nothing is allocated per connection.
extension Worker {
    /// Where slot `slot`'s inbound header bytes are.
    @inline(__always)
    func inboundOffset(_ slot: Int32) -> Int { Int(slot) * preludeStride + outboundStride }

    /// Peeks at what has arrived after the header bytes taken so far.
    func readProxyHeader(_ slot: Int32) {
        let consumed = Int(slab[slot].inboundConsumed)
        // The reader refuses a header longer than the area before its bytes are taken,
        // so the area is never full while a header is still incomplete.
        precondition(consumed < WorkerLayout.inboundHeaderLimit, "inbound PROXY header area full at \(consumed) bytes")
        io.prepareRecv(fd: slab[slot].client, into: preludes, offset: inboundOffset(slot) + consumed,
                       length: WorkerLayout.inboundHeaderLimit - consumed, peek: true, userData: userData(slot, .proxyPeek))
        slab[slot].inFlight += 1
    }

    func onProxyPeek(_ slot: Int32, _ result: Int32) {
        guard stillReading(slot, result) else { return }
        let consumed = Int(slab[slot].inboundConsumed)
        let step = preludes.withMutableBytes(offset: inboundOffset(slot), length: consumed + Int(result)) { seen in
            ProxyHeaderReader.next(UnsafeRawBufferPointer(seen), consumed: consumed, limit: WorkerLayout.inboundHeaderLimit)
        }
        switch step {
        case let .consume(count):
            take(slot, count)
        case let .complete(length):
            slab[slot].inboundLength = Int16(length)
            if length == consumed { proxyHeaderRead(slot) } else { take(slot, length - consumed) }
        case let .reject(why):
            rejectProxyHeader(slot, Self.describe(why))
        }
    }

    /// A peek or take that moved bytes while the header is still wanted. Closing (a
    /// reject, the drain, the time box): the cancel's completion, nothing to do. The
    /// client gone or failing first: rejected.
    private func stillReading(_ slot: Int32, _ result: Int32) -> Bool {
        guard slab[slot].state == .readingProxyHeader else { return false }
        if result == 0 && slab[slot].inboundConsumed == 0 {
            // Connected and closed without a byte: a load balancer's TCP health check.
            // Closed quietly (FIN), not counted or logged as a refused header.
            close(slot, reset: false)
            return false
        }
        guard result > 0 else {
            rejectProxyHeader(slot, result == 0 ? "the client closed before its PROXY header was complete"
                                                : "\(SystemError("recv", result: result))")
            return false
        }
        return true
    }

    /// Takes `count` bytes (all of them header) off the client.
    private func take(_ slot: Int32, _ count: Int) {
        io.prepareRecv(fd: slab[slot].client, into: preludes, offset: inboundOffset(slot) + Int(slab[slot].inboundConsumed),
                       length: count, peek: false, userData: userData(slot, .proxyTake))
        slab[slot].inFlight += 1
    }

    func onProxyTake(_ slot: Int32, _ result: Int32) {
        guard stillReading(slot, result) else { return }
        slab[slot].inboundConsumed += Int16(result)
        let length = slab[slot].inboundLength
        if length > 0 && slab[slot].inboundConsumed == length { proxyHeaderRead(slot) } else { readProxyHeader(slot) }
    }

    /// The whole header is in: check it is one the rule takes, then dial as usual. The
    /// reader said `.complete` only for a header ``ProxyHeader/decodeInbound(_:)``
    /// accepts, so it is not decoded again here: its first byte tells the version
    /// (v1 begins `PROXY `, v2 with its binary signature).
    private func proxyHeaderRead(_ slot: Int32) {
        let rule = Int(slab[slot].rule)
        let first = preludes.withMutableBytes(offset: inboundOffset(slot), length: 1) { $0[0] }
        let version: ProxyVersion = first == UInt8(ascii: "P") ? .v1 : .v2
        switch (setup.plan.ruleAcceptProxy[rule], version) {
        case (.any?, _), (.v1?, .v1), (.v2?, .v2): break
        default:
            rejectProxyHeader(slot, "a PROXY \(version) header, but accept_proxy = \"\(setup.plan.ruleAcceptProxy[rule]?.rawValue ?? "off")\"")
            return
        }
        connectionEvent(slot, .start(failedTargets: failedTargets(Int(slab[slot].listener))))
    }

    /// The slot's inbound header, decoded in place (nil: none was read).
    func inboundHeader(_ slot: Int32) -> InboundProxyHeader? {
        let length = Int(slab[slot].inboundLength)
        guard length > 0 else { return nil }
        return preludes.withMutableBytes(offset: inboundOffset(slot), length: length) { bytes in
            if case let .complete(header) = ProxyHeader.decodeInbound(UnsafeRawBufferPointer(bytes)) { header } else { nil }
        }
    }

    /// Resets the client, counts and logs (rate-limited) why. Nothing was dialled.
    func rejectProxyHeader(_ slot: Int32, _ reason: @autoclosure () -> String) {
        let rule = Int(slab[slot].rule)
        counters.add(.proxyInRejected, rule: rule, 1)
        if let suppressed = failureLog.admit(.proxyInRejected, rule: rule) {
            let peer = io.peerAddress(slab[slot].client).map { "\($0)" } ?? "gone"
            logger.warning("PROXY header refused; client reset", metadata: [
                "event": "rule.proxy_in_rejected", "rule": "\(setup.plan.ruleNames[rule])", "reason": "\(reason())",
                "peer": "\(peer)", "suppressed": .stringConvertible(suppressed),
            ])
        }
        close(slot, reset: true)
    }

    /// On stop: a client still sending its header has sent no payload and will not be
    /// served now; it is reset at once rather than held for the drain budget.
    func cutProxyHeaderReaders() {
        for slot in 0..<slab.highWater where slab[slot].state == .readingProxyHeader { close(slot, reset: true) }
    }

    /// Readers waiting longer than their rule's time box are rejected (from the idle sweep).
    func rejectSlowProxyHeaders() {
        for slot in 0..<slab.highWater where slab[slot].state == .readingProxyHeader {
            let timeoutMs = setup.plan.ruleAcceptProxyTimeoutMs[Int(slab[slot].rule)]
            guard nowMs - slab[slot].lastActiveMs >= Int64(timeoutMs) else { continue }
            rejectProxyHeader(slot, "no complete PROXY header within \(timeoutMs / 1000) s (\(slab[slot].inboundConsumed) bytes came)")
        }
    }

    private static func describe(_ rejection: ProxyHeaderReader.Rejection) -> String {
        switch rejection {
        case let .invalid(error): "not a valid PROXY header: \(error)"
        case let .tooLong(atLeast, limit): "a PROXY header of at least \(atLeast) bytes, over the \(limit) taken"
        }
    }

    /// A 128-bit id of the connection, stable for its life (PP2_TYPE_UNIQUE_ID and the
    /// logs): the worker's random key mixed with the connection's serial number.
    func connectionID(_ slot: Int32) -> (UInt64, UInt64) {
        let serial = slab[slot].serial
        return (splitMix64(idKey.0 ^ serial), splitMix64(idKey.1 ^ serial ^ UInt64(setup.index) << 48))
    }
}

/// splitmix64's finaliser: a bijection of 64-bit words that spreads nearby inputs
/// apart (connection ids here; the simulator's seeds).
@_spi(Simulation) @inline(__always)
public func splitMix64(_ value: UInt64) -> UInt64 {
    var z = value &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}
