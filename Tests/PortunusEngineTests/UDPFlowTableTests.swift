import PortunusRing
import Testing
import TestSupport
@_spi(Simulation) @testable import PortunusEngine

/// The UDP flow table and the per-rule flow caps, without a kernel.
@Suite struct UDPFlowTableTests {
    static func client(_ n: Int, port: UInt16 = 40000) -> SocketAddress {
        SocketAddress(ipv4: [10, UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)], port: port)
    }

    @Test func flowsAreKeyedByListenerAndClientAddress() throws {
        let table = try UDPFlowTable(capacity: 8)
        let a = try #require(table.insert(listener: 0, client: Self.client(1), rule: 0, nowMs: 0))
        let b = try #require(table.insert(listener: 1, client: Self.client(1), rule: 0, nowMs: 0))
        let c = try #require(table.insert(listener: 0, client: Self.client(1, port: 40001), rule: 0, nowMs: 0))
        let v6 = SocketAddress(ipv6: [UInt8](repeating: 0, count: 15) + [1], port: 40000)
        let d = try #require(table.insert(listener: 0, client: v6, rule: 1, nowMs: 0))
        #expect(Set([a, b, c, d]).count == 4)
        #expect(table.find(listener: 0, client: Self.client(1)) == a)
        #expect(table.find(listener: 1, client: Self.client(1)) == b)
        #expect(table.find(listener: 0, client: Self.client(1, port: 40001)) == c)
        #expect(table.find(listener: 0, client: v6) == d)
        #expect(table.find(listener: 2, client: Self.client(1)) == nil)
        #expect(table.find(listener: 0, client: Self.client(2)) == nil)
        #expect(table.count == 4)
    }

    @Test func removedFlowsAreForgottenAndTheirSlotsReusedWithANewGeneration() throws {
        let table = try UDPFlowTable(capacity: 2)
        let a = try #require(table.insert(listener: 0, client: Self.client(1), rule: 0, nowMs: 0))
        let b = try #require(table.insert(listener: 0, client: Self.client(2), rule: 0, nowMs: 0))
        #expect(table.insert(listener: 0, client: Self.client(3), rule: 0, nowMs: 0) == nil)
        let generation = table.flows[Int(a)].generation
        table.remove(a)
        #expect(table.find(listener: 0, client: Self.client(1)) == nil)
        #expect(table.find(listener: 0, client: Self.client(2)) == b)
        let c = try #require(table.insert(listener: 0, client: Self.client(3), rule: 0, nowMs: 0))
        #expect(c == a && table.flows[Int(c)].generation == generation &+ 1)
        #expect(table.find(listener: 0, client: Self.client(3)) == c)
    }

    /// Many flows, removed in a random order: every lookup stays right, including
    /// flows sharing a bucket (the table has 2 × capacity buckets, so chains form).
    @Test func aRandomChurnKeepsEveryLookupRight() throws {
        var random = SeededRandom(seed: 7)
        let table = try UDPFlowTable(capacity: 4096)
        var live: [Int: Int32] = [:]
        for step in 0..<50_000 {
            let n = random.next(in: 0...6000)
            if let flow = live[n] {
                #expect(table.find(listener: Int32(n % 3), client: Self.client(n)) == flow)
                if step % 2 == 0 { table.remove(flow); live[n] = nil }
            } else if let flow = table.insert(listener: Int32(n % 3), client: Self.client(n), rule: 0, nowMs: 0) {
                live[n] = flow
            } else {
                #expect(live.count == 4096)
            }
        }
        #expect(table.count == live.count)
        for (n, flow) in live { #expect(table.find(listener: Int32(n % 3), client: Self.client(n)) == flow) }
    }

    @Test func theSweepFindsFlowsIdleForTheirRulesWindow() throws {
        let table = try UDPFlowTable(capacity: 4)
        let short = try #require(table.insert(listener: 0, client: Self.client(1), rule: 0, nowMs: 1_000))
        let long = try #require(table.insert(listener: 1, client: Self.client(1), rule: 1, nowMs: 1_000))
        let windows: [Int64] = [10_000, 60_000]
        #expect(table.idle(nowMs: 10_999) { windows[Int($0)] }.isEmpty)
        #expect(table.idle(nowMs: 11_000) { windows[Int($0)] } == [short])
        table.flows[Int(short)].lastActiveMs = 11_000   // a datagram either way refreshes it
        #expect(table.idle(nowMs: 20_999) { windows[Int($0)] }.isEmpty)
        #expect(table.idle(nowMs: 21_000) { windows[Int($0)] } == [short])
        #expect(table.idle(nowMs: 61_000) { windows[Int($0)] } == [short, long])
    }

    @Test func aRulesCapCountsFlowsAcrossWorkersAndNeverGoesOver() async {
        let budget = UDPFlowBudget(caps: [10, 1000])
        // Two threads race for rule 0's ten flows.
        let taken = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<2 { group.addTask { (0..<100).filter { _ in budget.reserve(0) }.count } }
            return await group.reduce(0, +)
        }
        #expect(taken == 10 && budget.active(0) == 10)
        #expect(!budget.reserve(0))
        #expect(budget.reserve(1) && budget.active(1) == 1)
        budget.release(0)
        #expect(budget.reserve(0))
    }
}
