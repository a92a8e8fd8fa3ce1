// The request-head reader: table tests, every prefix of a valid head, caps.
@testable import PortunusMetrics
import Testing

@Suite struct HTTPRequestHeadTests {
    static let prometheusHead = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9300\r\nUser-Agent: Prometheus/2.42.0\r\n"
        + "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n"
        + "Accept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n"

    func parse(_ text: String) -> HTTPRequestHead.Parse { HTTPRequestHead.parse(Array(text.utf8)[...]) }

    @Test func aScrapersHeadIsComplete() {
        #expect(parse(Self.prometheusHead) == .complete(HTTPRequestHead(method: "GET", path: "/metrics")))
    }

    /// Every proper prefix needs more bytes: never invalid, never complete early.
    @Test func everyPrefixNeedsMore() {
        let bytes = Array(Self.prometheusHead.utf8)
        for end in 0..<bytes.count {
            #expect(HTTPRequestHead.parse(bytes[..<end]) == .needMore, "prefix of \(end) bytes")
        }
    }

    @Test("request lines", arguments: [
        ("GET /metrics HTTP/1.0\r\n\r\n", HTTPRequestHead.Parse.complete(.init(method: "GET", path: "/metrics"))),
        ("GET /metrics?name[]=x HTTP/1.1\r\n\r\n", .complete(.init(method: "GET", path: "/metrics"))),
        ("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", .complete(.init(method: "POST", path: "/metrics"))),
        ("HEAD / HTTP/1.1\n\n", .complete(.init(method: "HEAD", path: "/"))),
        ("GET /metrics HTTP/2.0\r\n\r\n", .invalid),
        ("GET /metrics\r\n\r\n", .invalid),
        ("GET  /metrics HTTP/1.1\r\n\r\n", .invalid),
        ("get /metrics HTTP/1.1\r\n\r\n", .invalid),
        ("GET metrics HTTP/1.1\r\n\r\n", .invalid),
        ("\u{16}\u{03}\u{01}\u{02}\u{00}\n", .invalid),   // a TLS ClientHello's first bytes, then a line end
        ("GET /metrics HTTP/1.1\r\nHost: x\r\n", .needMore),
    ])
    func requestLines(_ text: String, _ expected: HTTPRequestHead.Parse) {
        #expect(parse(text) == expected)
    }

    /// A head that does not end within the cap is refused, whatever follows.
    @Test func headsAreCapped() {
        let long = "GET /metrics HTTP/1.1\r\nX-Pad: " + String(repeating: "a", count: HTTPRequestHead.maxBytes)
        #expect(parse(long) == .tooLarge)
        #expect(parse(long + "\r\n\r\n") == .tooLarge)
        let fits = "GET /metrics HTTP/1.1\r\nX-Pad: " + String(repeating: "a", count: HTTPRequestHead.maxBytes - 40) + "\r\n\r\n"
        #expect(parse(fits) == .complete(.init(method: "GET", path: "/metrics")))
    }
}
