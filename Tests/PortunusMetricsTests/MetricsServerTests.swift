// The endpoint's HTTP server in-process on 127.0.0.1: answers, refusals and bounds.
import Foundation
import Logging
import PortunusConfig
import PortunusEngine
@testable import PortunusMetrics
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct MetricsServerTests {
    /// A server on a free loopback port over a fixed one-rule snapshot.
    static func start(budgetMs: Int = MetricsServer.clientBudgetMs, bytesIn: UInt64 = 77) throws -> (MetricsServer, UInt16) {
        let port = freePort()
        let address = try #require(ListenAddress("127.0.0.1:\(port)"))
        var counters = RuleCounters()
        counters.bytesIn = bytesIn
        let rules = [MetricsSnapshot.Rule(name: "web", proto: "tcp", counters: counters)]
        let server = try #require(MetricsServer.start(address: address, exporter: MetricsExporter(version: "t"),
                                                      logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() },
                                                      clientBudgetMs: budgetMs) {
            MetricsSnapshot(rules: rules, targets: [], dns: nil, reloads: 0, reloadFailures: 0, lastReloadSuccessful: true,
                            configLoadedUnixSeconds: 1)
        })
        return (server, port)
    }

    @Test func getMetricsAnswersTheTextFormat() throws {
        let (server, port) = try Self.start()
        defer { server.stop() }
        let response = try httpGet("127.0.0.1", port, "/metrics")
        #expect(response.status == 200)
        #expect(response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
        #expect(response.headers["content-length"] == "\(response.body.count)")
        #expect(response.headers["connection"] == "close")
        #expect(response.text.contains("\nportunus_rule_received_bytes_total{rule=\"web\",protocol=\"tcp\"} 77\n"))
        #expect(response.text.contains("# TYPE portunus_rule_received_bytes_total counter\n"))
        // A query string is not part of the path.
        #expect(try httpGet("127.0.0.1", port, "/metrics?debug=1").status == 200)
    }

    @Test("refusals", arguments: [
        ("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        ("GET /metricsx HTTP/1.1\r\n\r\n", 404),
        ("POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 405),
        ("HEAD /metrics HTTP/1.1\r\n\r\n", 405),
        ("BREW /metrics HTTP/1.1\r\n\r\n", 405),
        ("GET /metrics SPDY/3\r\n\r\n", 400),
        ("hello\n", 400),
    ])
    func refusals(_ request: String, _ status: Int) throws {
        let (server, port) = try Self.start()
        defer { server.stop() }
        let response = try httpExchange("127.0.0.1", port, request: Array(request.utf8))
        #expect(response.status == status)
        #expect(response.headers["connection"] == "close")
        if status == 405 { #expect(response.headers["allow"] == "GET") }
        #expect(!response.text.contains("portunus_"))
    }

    @Test func anOversizedHeadIsRefusedWith431() throws {
        let (server, port) = try Self.start()
        defer { server.stop() }
        let request = "GET /metrics HTTP/1.1\r\nX-Pad: " + String(repeating: "p", count: 9000) + "\r\n\r\n"
        let response = try httpExchange("127.0.0.1", port, request: Array(request.utf8))
        #expect(response.status == 431)
    }

    /// A client that connects and sends nothing holds the thread only for its budget;
    /// the next client is served once it is cut off.
    @Test func aSilentClientIsCutOffAfterItsBudget() throws {
        let (server, port) = try Self.start(budgetMs: 400)
        defer { server.stop() }
        let silent = try TestSocket.connect("127.0.0.1", port, receiveTimeoutSecs: 5)
        let started = Date()
        let response = try httpGet("127.0.0.1", port, "/metrics")
        let waited = Date().timeIntervalSince(started)
        #expect(response.status == 200)
        #expect(waited >= 0.3 && waited < 3, "served after \(waited) s")
        // The silent one was closed without a byte.
        #expect(try silent.receiveAll().isEmpty)
    }

    /// A client trickling a byte at a time cannot stretch its exchange past the budget.
    @Test func aTricklingClientIsCutOffToo() throws {
        let (server, port) = try Self.start(budgetMs: 400)
        defer { server.stop() }
        let slow = try TestSocket.connect("127.0.0.1", port, receiveTimeoutSecs: 5)
        let started = Date()
        var closed = false
        for byte in Array("GET /metrics HTTP/1.1\r\nX-Slow: ".utf8) + Array(repeating: UInt8(ascii: "s"), count: 100) {
            if (try? slow.sendAll([byte])) == nil { closed = true; break }
            usleep(20_000)
            if Date().timeIntervalSince(started) > 2 { break }
        }
        let elapsed = Date().timeIntervalSince(started)
        let answer = (try? slow.receiveAll()) ?? []
        #expect(closed || elapsed < 2.5)
        #expect(answer.isEmpty, "the trickler got \(answer.count) bytes")
        #expect(try httpGet("127.0.0.1", port, "/metrics").status == 200)
    }

    /// A client that has its answer but never closes holds the thread only for the
    /// linger time (1 s), not its whole budget.
    @Test func aClientThatNeverClosesIsLetGoAfterALingeringSecond() throws {
        let (server, port) = try Self.start(budgetMs: 5000)
        defer { server.stop() }
        let lingering = try TestSocket.connect("127.0.0.1", port, receiveTimeoutSecs: 5)
        try lingering.sendAll(Array("GET /metrics HTTP/1.1\r\n\r\n".utf8))
        let answer = try parseHTTPResponse(try lingering.receiveAll())   // ends at the server's FIN
        #expect(answer.status == 200)
        let started = Date()
        #expect(try httpGet("127.0.0.1", port, "/metrics").status == 200)
        let waited = Date().timeIntervalSince(started)
        #expect(waited >= 0.7 && waited < 2.5, "served after \(waited) s")
        lingering.close()
    }

    @Test func stopClosesTheListenerAndJoins() throws {
        let (server, port) = try Self.start()
        #expect(try httpGet("127.0.0.1", port, "/metrics").status == 200)
        let idle = try TestSocket.connect("127.0.0.1", port)   // being served when stop comes
        usleep(50_000)
        let started = Date()
        server.stop()
        #expect(Date().timeIntervalSince(started) < 1)
        #expect(throws: TestError.self) { try TestSocket.connect("127.0.0.1", port) }
        server.stop()   // twice is harmless
        idle.close()
    }

    @Test func aPortInUseIsNotServed() throws {
        let holder = try TestBackend(.echo)
        defer { holder.stop() }
        let address = try #require(ListenAddress("127.0.0.1:\(holder.port)"))
        let server = MetricsServer.start(address: address, exporter: MetricsExporter(version: "t"),
                                         logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }) {
            MetricsSnapshot(rules: [], targets: [], dns: nil, reloads: 0, reloadFailures: 0, lastReloadSuccessful: true,
                            configLoadedUnixSeconds: 0)
        }
        #expect(server == nil)
    }
}
