import PortunusResolver

/// A worker's own copy of what the resolver knows of one name, read on every connection
/// to a DNS-named target without a lock; replaced when the resolver posts a new answer.
/// Also the head of the worker's list of connections waiting for the name.
struct LocalName {
    var addresses: [ResolvedAddress] = []
    var ipv4Count = 0
    var freshUntilMs: Int64 = 0
    var failed = false
    var retryAtMs: Int64 = 0
    /// A request is out to the resolver and its answer has not come back.
    var requested = false
    /// Connections waiting for the answer: slots linked through their records.
    var waitHead: Int32 = -1
    var waitTail: Int32 = -1

    /// What a connection does with the name now.
    enum Use: Equatable {
        /// Dial the answers: within their TTL.
        case fresh
        /// Dial the answers, counted in `dns_failures`: the last refresh failed, and
        /// they expired less than `staleMs` ago.
        case stale
        /// Fail the target at once: the name failed less than `negativeMs` ago and has
        /// no usable answers.
        case failed
        /// Wait for the resolver (asking it, unless a request is already out).
        case wait
    }

    func use(nowMs: Int64, staleMs: Int64) -> Use {
        if nowMs < freshUntilMs { return .fresh }
        if failed {
            if !addresses.isEmpty && nowMs < freshUntilMs + staleMs { return .stale }
            if nowMs < retryAtMs { return .failed }
        }
        return .wait
    }

    /// A connection's wait ran out (the connect timeout) before the answer came: the
    /// previous answers if they are within the stale window, else a failure.
    func useAfterTimeout(nowMs: Int64, staleMs: Int64) -> Use {
        !addresses.isEmpty && nowMs < freshUntilMs + staleMs ? .stale : .failed
    }

    /// While serving stale answers, whether to ask the resolver again (in the
    /// background: no connection waits for it).
    func wantsRefresh(nowMs: Int64) -> Bool { !requested && nowMs >= retryAtMs }

    var count: Int { addresses.count }

    /// The `index`th address in dialling order: AAAA answers first with
    /// `preferIPv6`, else A answers first.
    func address(_ index: Int, preferIPv6: Bool) -> ResolvedAddress? {
        guard index < addresses.count else { return nil }
        guard preferIPv6 else { return addresses[index] }
        let ipv6Count = addresses.count - ipv4Count
        return index < ipv6Count ? addresses[ipv4Count + index] : addresses[index - ipv6Count]
    }

    mutating func apply(_ answer: NameAnswer) {
        addresses = answer.addresses
        ipv4Count = answer.ipv4Count
        freshUntilMs = answer.freshUntilMs
        failed = answer.failed
        retryAtMs = answer.retryAtMs
        requested = false
    }
}
