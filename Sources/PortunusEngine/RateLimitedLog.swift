import Glibc

/// Rate limit for failure log lines: at most one a second per rule and topic per
/// worker, carrying the number suppressed since, so that a dead backend, an exhausted
/// fd table or a flood of clients cannot flood the log.
struct RateLimitedLog {
    /// What failed; each has its own limit.
    enum Topic: Int, CaseIterable {
        case dialFailed, acceptFailed, rejected, pipeFailed, proxyInRejected
    }

    private var lastSecond: [Int]
    private var suppressed: [Int]

    init(rules: Int) {
        let keys = rules * Topic.allCases.count
        lastSecond = [Int](repeating: -1, count: keys)
        suppressed = [Int](repeating: 0, count: keys)
    }

    /// Returns the suppressed count to report, or nil when this line must be dropped.
    mutating func admit(_ topic: Topic, rule: Int) -> Int? {
        let key = rule * Topic.allCases.count + topic.rawValue
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &now)
        let second = Int(now.tv_sec)
        if second == lastSecond[key] { suppressed[key] += 1; return nil }
        lastSecond[key] = second
        defer { suppressed[key] = 0 }
        return suppressed[key]
    }
}
