// Valid files and the exact values they produce: defaults, overrides,
// target ordering and the edges of every range.
import Foundation
import PortunusConfig
import Testing

@Suite("Valid configurations")
struct ValidConfigTests {
    @Test func everyDefault() throws {
        let config = try parseValid(rule("ssh", "listen_port = 2222\ntarget = \"10.0.0.5:22\""))
        #expect(config.global.label == nil)
        #expect(config.global.logFilter == LogFilter(level: .warn))
        #expect(config.global.logFormat == .json)
        #expect(config.global.shutdownDrain == .seconds(30))
        #expect(config.defaults.proto == .tcp)
        #expect(config.defaults.udpMaxFlows == 1024)
        #expect(config.defaults.udpFlowIdle == .seconds(60))
        #expect(config.defaults.preferIPv6 == false)
        #expect(config.stats.enabled == true)
        #expect(config.stats.socketPath == "/run/portunus/standalone.sock")
        #expect(config.stats.refresh == .milliseconds(1000))
        let ssh = try #require(config.rules.first)
        #expect(ssh == Rule(name: "ssh", proto: .tcp, listenPorts: PortRange(port: 2222),
                            targets: [Target(host: .ipv4(IPv4Address(10, 0, 0, 5)), ports: PortRange(port: 22))],
                            preferIPv6: false, udpMaxFlows: 1024, udpFlowIdle: .seconds(60)))
        #expect(ssh.targets[0].priority == 0)
        #expect(ssh.targets[0].proxyProtocol == nil)
        #expect(ssh.targets[0].fileIndex == 0)
        // The public defaults agree with the parsed ones.
        #expect(config.global == GlobalSettings())
        #expect(config.defaults == RuleDefaults())
        #expect(config.stats == StatsSettings())
    }

    @Test func rulesInheritAndOverrideDefaults() throws {
        let config = try parseValid("""
            [defaults]
            protocol = "udp"
            udp_max_flows = 10
            udp_flow_idle_secs = 5
            prefer_ipv6 = true

            [[rule]]
            name = "inherits"
            listen_port = 5353
            target = "dns.internal:53"

            [[rule]]
            name = "overrides"
            protocol = "tcp"
            listen_port = 5354
            target = "dns.internal:53"
            udp_max_flows = 20
            udp_flow_idle_secs = 7
            prefer_ipv6 = false
            """)
        #expect(config.defaults == RuleDefaults(proto: .udp, udpMaxFlows: 10, udpFlowIdle: .seconds(5),
                                                preferIPv6: true))
        let inherits = config.rules[0], overrides = config.rules[1]
        #expect(inherits.proto == .udp)
        #expect(inherits.udpMaxFlows == 10)
        #expect(inherits.udpFlowIdle == .seconds(5))
        #expect(inherits.preferIPv6 == true)
        #expect(overrides.proto == .tcp)
        #expect(overrides.udpMaxFlows == 20)
        #expect(overrides.udpFlowIdle == .seconds(7))
        #expect(overrides.preferIPv6 == false)
    }

    @Test func rulesKeepFileOrder() throws {
        let names = ["zulu", "alpha", "mike"]
        let text = names.enumerated().map { index, name in
            rule(name, "listen_port = \(9000 + index)\ntarget = \"h:1\"")
        }.joined()
        #expect(try parseValid(text).rules.map(\.name) == names)
    }

    @Test func targetsAreSortedByPriorityWithFileOrderBreakingTies() throws {
        let config = try parseValid(rule("web", """
            listen_port = 443
            targets = [
              { host = "a", port = 1, priority = 10 },
              { host = "b", port = 1, priority = 0 },
              { host = "c", port = 1, priority = 5 },
              { host = "d", port = 1 },
              { host = "e", port = 1, priority = 10 },
            ]
            """))
        let targets = config.rules[0].targets
        #expect(targets.map(\.host) == ["b", "d", "c", "a", "e"].map { TargetHost.name($0) })
        #expect(targets.map(\.fileIndex) == [1, 3, 2, 0, 4])
        #expect(targets.map(\.priority) == [0, 0, 5, 10, 10])
    }

    @Test func sixtyFourTargets() throws {
        let entries = (0..<64).map { "{ host = \"10.0.\($0 / 256).\($0 % 256)\", port = 80 }" }
        let config = try parseValid(rule("many", "listen_port = 80\ntargets = [\n\(entries.joined(separator: ",\n"))\n]"))
        let targets = config.rules[0].targets
        #expect(targets.count == 64)
        #expect(targets.map(\.fileIndex) == Array(0..<64))
        #expect(targets[63].host == .ipv4(IPv4Address(10, 0, 0, 63)))
    }

    @Test func highestPort() throws {
        let config = try parseValid(rule("top", "listen_port = 65535\ntarget = \"h:65535\""))
        #expect(config.rules[0].listenPorts == PortRange(port: 65535))
        #expect(config.rules[0].targets[0].ports == PortRange(port: 65535))
    }

    @Test func oneWideRange() throws {
        let config = try parseValid(rule("one", "listen_ports = \"1-1\"\ntarget = \"h:1-1\""))
        #expect(config.rules[0].listenPorts == PortRange(lower: 1, upper: 1))
        #expect(config.rules[0].listenPorts.count == 1)
    }

    @Test func rangesMapByOffset() throws {
        let config = try parseValid(rule("range", "listen_ports = \"8000-8009\"\ntarget = \"backend:9000-9009\""))
        let rule = config.rules[0]
        #expect(rule.listenPorts == PortRange(lower: 8000, upper: 8009))
        #expect(rule.targets[0].ports.port(atOffset: rule.listenPorts.offset(of: 8003)!) == 9003)
        #expect(rule.targets[0].description == "backend:9000-9009")
    }

    @Test func listenPortsMayNameOnePort() throws {
        let config = try parseValid(rule("single", "listen_ports = \"8080\"\ntarget = \"h:80\""))
        #expect(config.rules[0].listenPorts == PortRange(port: 8080))
    }

    @Test func tableTargetMayCarryARangeString() throws {
        let config = try parseValid(rule("r", """
            listen_ports = "8000-8001"
            targets = [ { host = "h", port = "9000-9001", proxy_protocol = "v2" } ]
            """))
        #expect(config.rules[0].targets[0].ports == PortRange(lower: 9000, upper: 9001))
        #expect(config.rules[0].targets[0].proxyProtocol == .v2)
    }

    @Test func udpRuleWithoutProxyProtocol() throws {
        let config = try parseValid(rule("dns", """
            protocol = "udp"
            listen_port = 53
            targets = [ { host = "10.0.0.53", port = 53 }, { host = "10.0.0.54", port = 53, priority = 1 } ]
            """))
        #expect(config.rules[0].proto == .udp)
        #expect(config.rules[0].targets.allSatisfy { $0.proxyProtocol == nil })
    }

    /// Files edited on Windows: CRLF line ends and a UTF-8 byte-order mark.
    @Test func crlfAndByteOrderMark() throws {
        let text = "\u{FEFF}[global]\r\nlabel = \"win\"\r\n" + minimalRule.replacingOccurrences(of: "\n", with: "\r\n")
        let config = try parseValid(text)
        #expect(config.global.label == "win")
        #expect(config.rules.map(\.name) == ["ssh"])
    }

    @Test func parsingIsDeterministic() throws {
        let text = try String(contentsOfFile: Fixtures.path("valid_proxy_mixed.toml"), encoding: .utf8)
        #expect(try ConfigLoader.parse(text) == ConfigLoader.parse(text))
    }
}

@Suite("Rule initializer")
struct RuleInitializerTests {
    @Test func initializerSortsTargetsStably() {
        let host = TargetHost.name("h")
        let rule = Rule(name: "x", proto: .tcp, listenPorts: PortRange(port: 1), targets: [
            Target(host: host, ports: PortRange(port: 1), priority: 2, fileIndex: 0),
            Target(host: host, ports: PortRange(port: 2), priority: 1, fileIndex: 1),
            Target(host: host, ports: PortRange(port: 3), priority: 2, fileIndex: 2),
        ])
        #expect(rule.targets.map(\.fileIndex) == [1, 0, 2])
    }
}
