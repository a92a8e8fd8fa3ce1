import PortunusResolver
import Testing
@testable import PortunusEngine

/// A worker's copy of a name: when a connection dials it, waits, or fails at once, and
/// the order in which it dials the addresses.
@Suite struct NameCacheTests {
    static let staleMs: Int64 = 30_000

    static func name(_ addresses: [String], freshUntil: Int64, failed: Bool = false, retryAt: Int64 = 0) -> LocalName {
        let parsed = addresses.map { text -> ResolvedAddress in
            text.contains(":") ? ResolvedAddress(ipv6: [UInt8](repeating: 0, count: 15) + [UInt8(text.split(separator: ":").last!)!])
                               : ResolvedAddress(ipv4: text.split(separator: ".").map { UInt8($0)! })
        }
        var name = LocalName()
        name.apply(NameAnswer(name: 0, addresses: parsed, ipv4Count: parsed.filter { !$0.isIPv6 }.count,
                              freshUntilMs: freshUntil, failed: failed, retryAtMs: retryAt))
        return name
    }

    @Test func freshAnswersServeUntilTheirTTLThenTheConnectionWaits() {
        let name = Self.name(["10.0.0.1"], freshUntil: 10_000)
        #expect(name.use(nowMs: 9_999, staleMs: Self.staleMs) == .fresh)
        #expect(name.use(nowMs: 10_000, staleMs: Self.staleMs) == .wait)
        #expect(LocalName().use(nowMs: 0, staleMs: Self.staleMs) == .wait)
    }

    @Test func afterAFailedRefreshTheOldAnswersServeStaleForThirtySeconds() {
        let name = Self.name(["10.0.0.1"], freshUntil: 10_000, failed: true, retryAt: 13_000)
        #expect(name.use(nowMs: 12_000, staleMs: Self.staleMs) == .stale)
        #expect(!name.wantsRefresh(nowMs: 12_000))
        #expect(name.use(nowMs: 39_999, staleMs: Self.staleMs) == .stale)
        #expect(name.wantsRefresh(nowMs: 13_000))
        // Past the stale window: asked again (the negative period is over).
        #expect(name.use(nowMs: 40_000, staleMs: Self.staleMs) == .wait)
        // A connection whose wait ran out takes the stale answers while the window lasts.
        #expect(name.useAfterTimeout(nowMs: 39_999, staleMs: Self.staleMs) == .stale)
        #expect(name.useAfterTimeout(nowMs: 40_000, staleMs: Self.staleMs) == .failed)
    }

    @Test func aNameThatNeverResolvedFailsAtOnceForThreeSeconds() {
        let name = Self.name([], freshUntil: 0, failed: true, retryAt: 3_000)
        #expect(name.use(nowMs: 2_999, staleMs: Self.staleMs) == .failed)
        #expect(name.use(nowMs: 3_000, staleMs: Self.staleMs) == .wait)
        #expect(name.useAfterTimeout(nowMs: 1_000, staleMs: Self.staleMs) == .failed)
    }

    @Test func addressesAreDialledByFamilyPreferenceWithRecentlyFailedOnesLast() {
        // Stored IPv4 first: 10.0.0.1, 10.0.0.2, then ::1, ::2.
        var name = Self.name(["10.0.0.1", "10.0.0.2", "::1", "::2"], freshUntil: 10_000)
        let order = { (preferIPv6: Bool, dead: UInt32) in (0..<5).map { name.storageIndex($0, preferIPv6: preferIPv6, dead: dead) } }
        #expect(order(false, 0) == [0, 1, 2, 3, nil])
        #expect(order(true, 0) == [2, 3, 0, 1, nil])
        #expect(order(false, 0b0001) == [1, 2, 3, 0, nil])
        #expect(order(true, 0b0100) == [3, 0, 1, 2, nil])

        name.failedAtMs[0] = 5_000
        #expect(name.deadAddresses(nowMs: 34_999) == 0b0001)
        #expect(name.deadAddresses(nowMs: 35_000) == 0)
        // A new answer keeps the marks of the addresses it still holds.
        name.apply(NameAnswer(name: 0, addresses: [ResolvedAddress(ipv4: [10, 0, 0, 9]), ResolvedAddress(ipv4: [10, 0, 0, 1])],
                              ipv4Count: 2, freshUntilMs: 20_000, failed: false, retryAtMs: 0))
        #expect(name.failedAtMs == [0, 5_000])
        #expect(name.deadAddresses(nowMs: 6_000) == 0b10)
    }
}
