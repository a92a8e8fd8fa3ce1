import Foundation
import Logging
import Testing
import TestSupport
@testable import PortunusResolver

/// The counts the metrics endpoint shows: a lookup, a cache answer, a failure and the
/// names held, against a real DNS server.
@Suite(.serialized) struct ResolverFiguresTests {
    @Test func figuresCountLookupsCacheAnswersAndFailures() throws {
        let server = try DnsmasqServer(hosts: ResolverTests.hosts, ttl: 60)
        let resolver = try ResolverTests.resolver(server)
        defer { resolver.stop() }
        #expect(resolver.figures() == ResolverFigures(names: 3, cachedNames: 0, cacheAnswers: 0, lookups: 0, lookupFailures: 0))
        resolver.request(name: 1, worker: 0)
        #expect(ResolverTests.answers(resolver).count == 1)
        // A fresh answer: from the cache, twice.
        resolver.request(name: 1, worker: 0)
        resolver.request(name: 1, worker: 0)
        #expect(ResolverTests.answers(resolver, count: 2).count == 2)
        resolver.request(name: 2, worker: 0)
        #expect(ResolverTests.answers(resolver).first?.failed == true)
        // The failed name, asked again at once, is answered by the negative cache.
        resolver.request(name: 2, worker: 0)
        #expect(ResolverTests.answers(resolver).count == 1)
        #expect(resolver.figures() == ResolverFigures(names: 3, cachedNames: 1, cacheAnswers: 3, lookups: 2, lookupFailures: 1))
    }
}
