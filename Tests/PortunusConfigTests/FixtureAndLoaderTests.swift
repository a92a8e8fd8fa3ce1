// The fixture files, file loading, TOML syntax errors and the text
// of diagnostics as the operator sees it.
import Foundation
import PortunusConfig
import Testing

@Suite("Fixtures")
struct FixtureTests {
    @Test func fixtureDirectoryIsFound() throws {
        #expect(try Fixtures.all().count >= 6, "fixtures at \(Fixtures.directory.path)")
    }

    /// Guards fixtures added later: the name says which way they must go.
    @Test func everyFixtureBehavesAsItsNameSays() throws {
        for name in try Fixtures.all() {
            let result = Result { () throws(ConfigError) in try ConfigLoader.load(path: Fixtures.path(name)) }
            switch result {
            case .success: #expect(name.hasPrefix("valid_"), "\(name) loaded but is not named valid_")
            case .failure(let error):
                #expect(name.hasPrefix("invalid_"), "\(name) failed: \(error)")
                #expect(error.path == Fixtures.path(name))
            }
        }
    }

    @Test func validMinimal() throws {
        let config = try ConfigLoader.load(path: Fixtures.path("valid_minimal.toml"))
        #expect(config.rules == [Rule(name: "ssh", proto: .tcp, listenPorts: PortRange(port: 2222), targets: [
            Target(host: .ipv4(IPv4Address(10, 0, 0, 5)), ports: PortRange(port: 22)),
        ])])
    }

    @Test func validProxyMixed() throws {
        let config = try ConfigLoader.load(path: Fixtures.path("valid_proxy_mixed.toml"))
        #expect(config.global.label == "edge-fixture")
        #expect(config.global.shutdownDrain == .seconds(5))
        let web = try #require(config.rules.first)
        #expect(config.rules.count == 1)
        #expect(web.name == "web" && web.proto == .tcp && web.listenPorts == PortRange(port: 8443))
        #expect(web.targets.map(\.host) == [.ipv4(IPv4Address(10, 0, 0, 1)), .ipv4(IPv4Address(10, 0, 0, 2)),
                                            .name("legacy.internal")])
        #expect(web.targets.map(\.priority) == [0, 5, 10])
        #expect(web.targets.map(\.proxyProtocol) == [.v2, .v1, nil])
        #expect(web.targets.allSatisfy { $0.ports == PortRange(port: 443) })
    }

    @Test func validUDP() throws {
        let config = try ConfigLoader.load(path: Fixtures.path("valid_udp.toml"))
        let rule = try #require(config.rules.first)
        #expect(rule.name == "udp-echo" && rule.proto == .udp && rule.listenPorts == PortRange(port: 9999))
        #expect(rule.targets.map(\.description) == ["127.0.0.1:9998"])
    }

    @Test("invalid fixtures", arguments: [
        ("invalid_no_rules.toml", Expected("config.no_rules")),
        ("invalid_proxy_on_udp.toml",
         Expected("validation.proxy_protocol_on_unsupported_rule", rule: "dns", key: "targets[0].proxy_protocol")),
        ("invalid_proxy_value.toml",
         Expected("validation.proxy_protocol_invalid", rule: "web", key: "targets[0].proxy_protocol")),
    ])
    func invalidFixture(name: String, expected: Expected) {
        #expect(throws: ConfigError.self) { try ConfigLoader.load(path: Fixtures.path(name)) }
        do {
            _ = try ConfigLoader.load(path: Fixtures.path(name))
        } catch {
            #expect(error.diagnostics.map(Expected.init) == [expected])
        }
    }

    @Test func proxyValueMessageNamesTheValue() {
        do {
            _ = try ConfigLoader.load(path: Fixtures.path("invalid_proxy_value.toml"))
            Issue.record("expected a failure")
        } catch {
            let diagnostic = error.diagnostics[0]
            #expect(diagnostic.message.contains("\"v3\""))
            #expect(diagnostic.description
                == #"error[validation.proxy_protocol_invalid]: rule "web", targets[0].proxy_protocol: "v3" is not one of "v1", "v2""#)
        }
    }
}

@Suite("Loading files")
struct LoaderTests {
    private func loadError(_ path: String) -> ConfigError? {
        do {
            _ = try ConfigLoader.load(path: path)
            return nil
        } catch {
            return error
        }
    }

    @Test func missingFile() throws {
        let path = "/nonexistent/portunus-\(UInt64.random(in: 0...UInt64.max)).toml"
        let error = try #require(loadError(path))
        #expect(error.path == path)
        #expect(error.diagnostics.map(Expected.init) == [Expected("io.read_failed")])
        #expect(error.diagnostics[0].message.contains(path))
        #expect(error.diagnostics[0].message.contains("No such file or directory (errno 2)"))
    }

    @Test func directory() throws {
        let error = try #require(loadError(FileManager.default.temporaryDirectory.path))
        #expect(error.codes == ["io.read_failed"])
        #expect(error.diagnostics[0].message.contains("Is a directory"))
    }

    @Test func fileContentsMatchParse() throws {
        let path = Fixtures.path("valid_proxy_mixed.toml")
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(try ConfigLoader.load(path: path) == ConfigLoader.parse(text, path: path))
    }

    @Test func invalidUTF8() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("portunus-\(UUID()).toml")
        try Data([0x5B, 0x5B, 0x72, 0xFF, 0xFE, 0x0A]).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let error = try #require(loadError(url.path))
        #expect(error.codes == ["parse.syntax"])
        #expect(error.diagnostics[0].message.contains("UTF-8"))
    }

    @Test func validationErrorsCarryThePath() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("portunus-\(UUID()).toml")
        try Data("[global]\n".utf8).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let error = try #require(loadError(url.path))
        #expect(error.path == url.path)
        #expect(error.diagnostics.allSatisfy { $0.path == url.path })
    }
}

@Suite("Syntax errors and diagnostic text")
struct DiagnosticTextTests {
    private func parseError(_ text: String, path: String = "portunus.toml") -> ConfigError? {
        do {
            _ = try ConfigLoader.parse(text, path: path)
            return nil
        } catch {
            return error
        }
    }

    @Test("syntax errors report line and column", arguments: [
        ("[[rule]]\nname = \"a\nlisten_port = 1\n", 2, 10),          // unterminated string
        ("[[rule]]\nname = \"a\"\nname = \"b\"\n", 3, 8),           // key defined twice
        ("x = \n", 1, 5),                                          // missing value
        ("[[rule]]\nlisten_port = 99999999999999999999\n", 2, 35), // beyond 64 bits
    ])
    func syntax(text: String, line: Int, column: Int) throws {
        let error = try #require(parseError(text))
        #expect(error.codes == ["parse.syntax"])
        let diagnostic = error.diagnostics[0]
        #expect(diagnostic.line == line)
        #expect(diagnostic.column == column)
        #expect(diagnostic.description.hasPrefix("portunus.toml:\(line):\(column): error[parse.syntax]: "))
    }

    @Test func nulByteIsASyntaxErrorNotATruncation() throws {
        let error = try #require(parseError("[global]\nlabel = \"a\"\u{0}\n" + minimalRule))
        #expect(error.codes == ["parse.syntax"])
        #expect(error.diagnostics[0].line == 2)
        #expect(error.diagnostics[0].column == 12)
    }

    @Test func allErrorsAreReportedAtOnce() throws {
        let error = try #require(parseError("""
            [global]
            shutdown_drain_secs = -4

            [[rule]]
            name = "web"
            protocol = "sctp"
            listen_port = 8443
            targets = [ { host = "10.0.0.1", port = 443, proxy_protocol = "v3" } ]
            """))
        #expect(error.diagnostics.map(Expected.init) == [
            Expected("validation.value_out_of_range", key: "global.shutdown_drain_secs"),
            Expected("validation.protocol_unknown", rule: "web", key: "protocol"),
            Expected("validation.proxy_protocol_invalid", rule: "web", key: "targets[0].proxy_protocol"),
        ])
        #expect(error.description.split(separator: "\n").count == 3)
        #expect(error.description == error.diagnostics.map(\.description).joined(separator: "\n"))
    }

    @Test func errorsAcrossManyRulesAndSections() throws {
        let error = try #require(parseError("""
            bogus = true
            [stats]
            refresh_ms = 10
            [[rule]]
            name = "a"
            listen_port = 0
            target = "::1:80"
            [[rule]]
            name = "a"
            listen_ports = "9-1"
            targets = []
            """))
        #expect(error.diagnostics.map(Expected.init) == [
            Expected("validation.refresh_ms_out_of_range", key: "stats.refresh_ms"),
            Expected("validation.port_out_of_range", rule: "a", key: "listen_port"),
            Expected("validation.host_invalid", rule: "a", key: "target"),
            Expected("validation.duplicate_rule_name", rule: "a", key: "name"),
            Expected("validation.port_range_inverted", rule: "a", key: "listen_ports"),
            Expected("validation.empty_targets", rule: "a", key: "targets"),
            Expected("validation.unknown_key", key: "bogus"),
        ])
    }

    @Test("description formats", arguments: [
        (ConfigDiagnostic(code: "config.no_rules", message: "no rules"), "error[config.no_rules]: no rules"),
        (ConfigDiagnostic(code: "validation.wrong_type", key: "stats.enabled", message: "m"),
         "error[validation.wrong_type]: stats.enabled: m"),
        (ConfigDiagnostic(code: "c", rule: "r", message: "m"), "error[c]: rule \"r\": m"),
        (ConfigDiagnostic(code: "c", rule: "r", key: "k", message: "m"), "error[c]: rule \"r\", k: m"),
        (ConfigDiagnostic(code: "parse.syntax", line: 3, column: 9, message: "m", path: "/etc/p.toml"),
         "/etc/p.toml:3:9: error[parse.syntax]: m"),
    ])
    func descriptions(diagnostic: ConfigDiagnostic, expected: String) {
        #expect(diagnostic.description == expected)
    }

    @Test func messagesQuoteAndEscapeValues() throws {
        let error = try #require(parseError(minimalRule.replacingOccurrences(of: "2222", with: "2222\nprotocol = \"t\\tcp\"")))
        #expect(error.diagnostics[0].message == #""t\tcp" is not one of "tcp", "udp""#)
    }
}
