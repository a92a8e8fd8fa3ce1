import PortunusResolver
import PortunusRing

/// A worker's own copy of what the resolver knows of one name, read on every connection
/// to a DNS-named target without a lock; replaced when the resolver posts a new answer.
/// Also the head of the worker's list of connections waiting for the name.
struct LocalName {
    var addresses: [ResolvedAddress] = []
    var ipv4Count = 0
    /// Per address (parallel to `addresses`): when a connect to it last failed (0:
    /// never, or it connected since). For ``deadForMs`` after, it is dialled after the
    /// others, so one dead address of a name costs one connect timeout, not one per
    /// connection.
    var failedAtMs: [Int64] = []
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

    /// How long an address that failed a connect is dialled last.
    static let deadForMs: Int64 = 30_000

    /// The addresses (bit i: `addresses[i]`, the first 32) that failed a connect less
    /// than ``deadForMs`` ago: a connection takes this snapshot when it starts on the
    /// name, so its order stays fixed while it tries them.
    func deadAddresses(nowMs: Int64) -> UInt32 {
        var mask: UInt32 = 0
        for i in 0..<min(failedAtMs.count, 32) where failedAtMs[i] != 0 && nowMs - failedAtMs[i] < Self.deadForMs {
            mask |= 1 << UInt32(i)
        }
        return mask
    }

    /// Which of `addresses` is the `index`th in dialling order: AAAA answers first with
    /// `preferIPv6`, else A answers first; the ones in `dead` after all the others.
    func storageIndex(_ index: Int, preferIPv6: Bool, dead: UInt32) -> Int? {
        guard index < addresses.count else { return nil }
        let ipv6Count = addresses.count - ipv4Count
        var remaining = index
        for pass in 0..<2 {
            for position in 0..<addresses.count {
                let i = !preferIPv6 ? position : position < ipv6Count ? ipv4Count + position : position - ipv6Count
                guard (i < 32 && dead & (1 << UInt32(i)) != 0) == (pass == 1) else { continue }
                if remaining == 0 { return i }
                remaining -= 1
            }
        }
        return nil
    }

    /// `addresses[index]` with `port`, without allocating.
    func socketAddress(_ index: Int, port: UInt16) -> SocketAddress {
        let address = addresses[index]
        return SocketAddress(family: address.isIPv6 ? .ipv6 : .ipv4, addressWords: address.words, port: port)
    }

    mutating func apply(_ answer: NameAnswer) {
        // An address still in the new answers keeps its failure mark.
        failedAtMs = answer.addresses.map { address in
            addresses.firstIndex(of: address).map { failedAtMs[$0] } ?? 0
        }
        addresses = answer.addresses
        ipv4Count = answer.ipv4Count
        freshUntilMs = answer.freshUntilMs
        failed = answer.failed
        retryAtMs = answer.retryAtMs
        requested = false
    }
}
