import Foundation
import Logging
import Testing
import TestSupport
@testable import PortunusResolver

/// The resolver thread against a real DNS server (dnsmasq on loopback): answers, TTL
/// clamping, one lookup per name, the negative cache, stale answers, and the 3 s bound.
@Suite(.serialized) struct ResolverTests {
    static let names = ["both.portunus.test", "v4.portunus.test", "missing.portunus.test"]
    static let hosts = [
        (address: "127.0.0.1", name: "both.portunus.test"), (address: "::1", name: "both.portunus.test"),
        (address: "127.0.0.2", name: "both.portunus.test"), (address: "127.0.0.3", name: "v4.portunus.test"),
    ]

    static func resolver(_ server: DnsmasqServer, workers: Int = 1, cacheCapacity: Int = 8192) throws -> Resolver {
        var settings = ResolverSettings(servers: [DNSServer("127.0.0.1:\(server.port)")!])
        settings.cacheCapacity = cacheCapacity
        let resolver = try Resolver(names: names, nameRules: ["r", "r", "r"], workers: workers, settings: settings,
                                    logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        resolver.start()
        return resolver
    }

    /// Waits (at most `seconds`) until worker `worker`'s mailbox holds `count` answers.
    static func answers(_ resolver: Resolver, worker: Int = 0, count: Int = 1, seconds: Double = 6) -> [NameAnswer] {
        var all: [NameAnswer] = [], batch: [NameAnswer] = []
        let deadline = Date().addingTimeInterval(seconds)
        while all.count < count && Date() < deadline {
            resolver.mailboxes[worker].take(into: &batch)
            all += batch
            usleep(5_000)
        }
        return all
    }

    @Test func answersCarryBothFamiliesIPv4FirstWithTheTTLClampedToFiveSeconds() throws {
        let server = try DnsmasqServer(hosts: Self.hosts, ttl: 1)
        let resolver = try Self.resolver(server)
        defer { resolver.stop() }
        let before = Clock.nowMs()
        resolver.request(name: 0, worker: 0)
        let answer = try #require(Self.answers(resolver).first)
        #expect(answer.name == 0 && !answer.failed)
        #expect(answer.addresses.map(\.description) == ["127.0.0.1", "127.0.0.2", "::1"])
        #expect(answer.ipv4Count == 2)
        // TTL 1 s from the server, clamped up to 5 s.
        #expect(answer.freshUntilMs >= before + 5000 && answer.freshUntilMs <= Clock.nowMs() + 5000)
    }

    @Test func manyRequestsFromTwoWorkersMakeOneLookup() throws {
        let server = try DnsmasqServer(hosts: Self.hosts, ttl: 60)
        let resolver = try Self.resolver(server, workers: 2)
        defer { resolver.stop() }
        for _ in 0..<50 {
            resolver.request(name: 1, worker: 0)
            resolver.request(name: 1, worker: 1)
        }
        let first = Self.answers(resolver, worker: 0)
        let second = Self.answers(resolver, worker: 1)
        #expect(first.first?.addresses.map(\.description) == ["127.0.0.3"])
        #expect(second.first?.addresses.map(\.description) == ["127.0.0.3"])
        // A fresh answer is served from the cache without asking the server again.
        resolver.request(name: 1, worker: 0)
        #expect(Self.answers(resolver, worker: 0).count == 1)
        // One A and one AAAA query in all.
        #expect(server.queries(for: "v4.portunus.test") == 2, "\(server.log)")
    }

    @Test func aFailedNameIsNotAskedAgainForThreeSeconds() throws {
        let server = try DnsmasqServer(hosts: Self.hosts, ttl: 60)
        let resolver = try Self.resolver(server)
        defer { resolver.stop() }
        resolver.request(name: 2, worker: 0)
        let answer = try #require(Self.answers(resolver).first)
        #expect(answer.failed && answer.addresses.isEmpty)
        #expect(answer.retryAtMs > Clock.nowMs() + 2000)
        let queries = server.queries(for: "missing.portunus.test")
        #expect(queries >= 1)
        resolver.request(name: 2, worker: 0)
        let again = try #require(Self.answers(resolver).first)
        #expect(again.failed)
        #expect(server.queries(for: "missing.portunus.test") == queries)
        // After the 3 s, the name is asked again.
        Thread.sleep(forTimeInterval: Double(answer.retryAtMs - Clock.nowMs()) / 1000 + 0.1)
        resolver.request(name: 2, worker: 0)
        _ = Self.answers(resolver)
        #expect(server.queries(for: "missing.portunus.test") > queries)
    }

    @Test func aBlackholedServerFailsTheLookupAfterThreeSecondsKeepingTheOldAnswers() throws {
        let server = try DnsmasqServer(hosts: Self.hosts, ttl: 1)
        let resolver = try Self.resolver(server)
        defer { resolver.stop() }
        resolver.request(name: 1, worker: 0)
        let fresh = try #require(Self.answers(resolver).first)
        server.pause()
        defer { server.resume() }
        Thread.sleep(forTimeInterval: Double(fresh.freshUntilMs - Clock.nowMs()) / 1000 + 0.1)
        let asked = Clock.nowMs()
        resolver.request(name: 1, worker: 0)
        let stale = try #require(Self.answers(resolver, seconds: 8).first)
        let waited = Clock.nowMs() - asked
        #expect(waited >= 2900 && waited < 4500, "waited \(waited) ms")
        #expect(stale.failed)
        // The previous answers come back with their old expiry: usable stale for 30 s more.
        #expect(stale.addresses == fresh.addresses && stale.freshUntilMs == fresh.freshUntilMs)
    }

    @Test func aFullCacheDropsTheLeastRecentlyAskedNameInEveryWorker() throws {
        let server = try DnsmasqServer(hosts: Self.hosts, ttl: 60)
        let resolver = try Self.resolver(server, workers: 2, cacheCapacity: 1)
        defer { resolver.stop() }
        resolver.request(name: 0, worker: 0)
        #expect(Self.answers(resolver).first?.addresses.isEmpty == false)
        resolver.request(name: 1, worker: 0)
        // Worker 0 gets the eviction of name 0 and the answer for name 1; worker 1,
        // which asked nothing, still hears of the eviction.
        let first = Self.answers(resolver, worker: 0, count: 2)
        #expect(first.map(\.name).sorted() == [0, 1])
        #expect(first.first { $0.name == 0 }.map { $0.addresses.isEmpty && $0.freshUntilMs == 0 } == true)
        #expect(first.first { $0.name == 1 }?.addresses.map(\.description) == ["127.0.0.3"])
        #expect(Self.answers(resolver, worker: 1).map(\.name) == [0])
    }

    @Test func dnsServerArgumentsParse() {
        #expect(DNSServer("10.0.0.1")?.description == "10.0.0.1:53")
        #expect(DNSServer("10.0.0.1:5353")?.description == "10.0.0.1:5353")
        #expect(DNSServer("::1")?.description == "[::1]:53")
        #expect(DNSServer("[2001:db8::1]:5353")?.description == "[2001:db8::1]:5353")
        for bad in ["", "resolver.internal", "10.0.0.1:0", "10.0.0.1:65536", "[::1", "[::1]5353", "::1:53x", "10.0.0.256"] {
            #expect(DNSServer(bad) == nil, "\(bad)")
        }
    }
}
