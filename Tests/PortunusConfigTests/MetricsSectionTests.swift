// Table tests for `[metrics]` (an addition to the Portunus schema) and the
// listen address it takes.
import PortunusConfig
import Testing

@Suite("[metrics]")
struct MetricsSectionTests {
    static let cases: [InvalidCase] = [
        InvalidCase("no port", "[metrics]\nlisten = \"127.0.0.1\"\n" + minimalRule,
                    Expected("validation.metrics_listen_invalid", key: "metrics.listen"), messageContains: ["has no port"]),
        InvalidCase("port 0", "[metrics]\nlisten = \"127.0.0.1:0\"\n" + minimalRule,
                    Expected("validation.metrics_listen_invalid", key: "metrics.listen"), messageContains: ["1...65535"]),
        InvalidCase("port 65536", "[metrics]\nlisten = \"127.0.0.1:65536\"\n" + minimalRule,
                    Expected("validation.metrics_listen_invalid", key: "metrics.listen"), messageContains: ["1...65535"]),
        InvalidCase("a port range", "[metrics]\nlisten = \"127.0.0.1:9300-9301\"\n" + minimalRule,
                    Expected("validation.metrics_listen_invalid", key: "metrics.listen")),
        InvalidCase("a signed port", "[metrics]\nlisten = \"127.0.0.1:+9300\"\n" + minimalRule,
                    Expected("validation.metrics_listen_invalid", key: "metrics.listen")),
        InvalidCase("bare IPv6", "[metrics]\nlisten = \"::1:9300\"\n" + minimalRule,
                    Expected("validation.metrics_listen_invalid", key: "metrics.listen"), messageContains: ["bracket"]),
        InvalidCase("bracketed IPv6 without a port", "[metrics]\nlisten = \"[::1]\"\n" + minimalRule,
                    Expected("validation.metrics_listen_invalid", key: "metrics.listen"), messageContains: [":PORT"]),
        InvalidCase("unclosed bracket", "[metrics]\nlisten = \"[::1:9300\"\n" + minimalRule,
                    Expected("validation.metrics_listen_invalid", key: "metrics.listen"), messageContains: ["missing \"]\""]),
        InvalidCase("a DNS name", "[metrics]\nlisten = \"localhost:9300\"\n" + minimalRule,
                    Expected("validation.metrics_listen_invalid", key: "metrics.listen"), messageContains: ["not an IPv4 address"]),
        InvalidCase("IPv4 with a leading zero", "[metrics]\nlisten = \"127.0.0.01:9300\"\n" + minimalRule,
                    Expected("validation.metrics_listen_invalid", key: "metrics.listen"), messageContains: ["leading zero"]),
        InvalidCase("an integer", "[metrics]\nlisten = 9300\n" + minimalRule,
                    Expected("validation.wrong_type", key: "metrics.listen"), messageContains: ["a string"]),
        InvalidCase("empty", "[metrics]\nlisten = \"\"\n" + minimalRule,
                    Expected("validation.metrics_listen_invalid", key: "metrics.listen")),
        InvalidCase("unknown key with a suggestion", "[metrics]\nlisen = \"127.0.0.1:9300\"\n" + minimalRule,
                    Expected("validation.unknown_key", key: "metrics.lisen"),
                    messageContains: ["[metrics]", #"did you mean "listen""#]),
        InvalidCase("metrics is not a table", "metrics = \"127.0.0.1:9300\"\n" + minimalRule,
                    Expected("validation.wrong_type", key: "metrics")),
    ]

    @Test("invalid [metrics]", arguments: cases)
    func invalid(_ testCase: InvalidCase) { check(testCase) }

    /// A bad address points at the line and column of its key, after the file's name.
    @Test func aBadAddressCarriesTheLineAndColumnOfItsKey() throws {
        let text = "[global]\nlabel = \"x\"\n\n[metrics]\n  listen = \"127.0.0.1:99999\"\n" + minimalRule
        let error = try #require(throws: ConfigError.self) { try ConfigLoader.parse(text, path: "edge.toml") }
        #expect(error.diagnostics.count == 1)
        let diagnostic = try #require(error.diagnostics.first)
        #expect(diagnostic.line == 5 && diagnostic.column == 3)
        #expect(diagnostic.description.hasPrefix("edge.toml:5:3: error[validation.metrics_listen_invalid]: metrics.listen: "))
    }

    @Test func absentMeansNoEndpoint() throws {
        #expect(try parseValid(minimalRule).metrics == MetricsSettings(listen: nil))
        #expect(try parseValid("[metrics]\n" + minimalRule).metrics.listen == nil)
    }

    @Test("valid addresses", arguments: [
        ("127.0.0.1:9300", "127.0.0.1:9300", 9300),
        ("0.0.0.0:1", "0.0.0.0:1", 1),
        ("[::1]:65535", "[::1]:65535", 65535),
        ("[2001:DB8:0:0:0:0:0:1]:9300", "[2001:db8::1]:9300", 9300),
    ])
    func validAddresses(_ text: String, _ printed: String, _ port: Int) throws {
        let config = try parseValid("[metrics]\nlisten = \"\(text)\"\n" + minimalRule)
        let listen = try #require(config.metrics.listen)
        #expect(listen.description == printed)
        #expect(Int(listen.port) == port)
        #expect(ListenAddress(printed) == listen)
    }

    @Test func theHostIsTheFamilyWritten() throws {
        #expect(ListenAddress("10.1.2.3:80")?.host == .ipv4(IPv4Address(10, 1, 2, 3)))
        #expect(ListenAddress("[::1]:80")?.host == .ipv6(IPv6Address("::1")!))
        #expect(ListenAddress("[::ffff:10.1.2.3]:80")?.host == .ipv6(IPv6Address("::ffff:10.1.2.3")!))
    }

    /// Every prefix of a valid address is refused or is itself an address (never a trap).
    @Test func everyPrefixIsJudged() {
        for text in ["127.0.0.1:9300", "[2001:db8::1]:9300"] {
            for end in 0...text.count {
                let prefix = String(text.prefix(end))
                switch ListenAddress.parse(prefix) {
                case .success(let address): #expect(address.port != 0)
                case .failure(let error): #expect(!error.message.isEmpty)
                }
            }
        }
        #expect(ListenAddress("127.0.0.1:9") != nil && ListenAddress("127.0.0.1:") == nil && ListenAddress("127.0.0.1") == nil)
    }
}
