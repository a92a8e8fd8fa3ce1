// Table tests for every rule-level check of SPEC.md §2: each row is one
// mistake and exactly the diagnostics (code, rule, key) it must produce.
import PortunusConfig
import Testing

private typealias C = ConfigDiagnostic.Code

/// Two-line shorthand for a rule with a listen port and a target string.
private func simple(_ name: String = "web", _ extra: String = "", listen: String = "listen_port = 8080",
                    target: String = "target = \"10.0.0.1:80\"") -> String {
    rule(name, "\(listen)\n\(target)\n\(extra)")
}

@Suite("Rule names")
struct RuleNameTests {
    static let cases: [InvalidCase] = [
        InvalidCase("no rules at all", "[global]\nlabel = \"x\"\n", Expected("config.no_rules")),
        InvalidCase("empty rule array", "rule = []\n", Expected("config.no_rules")),
        InvalidCase("empty file", "", Expected("config.no_rules")),
        InvalidCase("[rule] instead of [[rule]]", "[rule]\nname = \"a\"\n",
                    Expected("validation.wrong_type", key: "rule"), messageContains: ["[[rule]]"]),
        InvalidCase("rule array of non-tables", "rule = [1]\n",
                    Expected("validation.wrong_type", key: "rule[0]")),
        InvalidCase("duplicate name",
                    simple("a") + simple("a", listen: "listen_port = 8081"),
                    Expected("validation.duplicate_rule_name", rule: "a", key: "name"),
                    messageContains: ["\"a\"", "rule[0]"]),
        InvalidCase("duplicate name reported once per extra copy",
                    simple("a") + simple("a", listen: "listen_port = 8081")
                        + simple("a", listen: "listen_port = 8082"),
                    Expected("validation.duplicate_rule_name", rule: "a", key: "name"),
                    Expected("validation.duplicate_rule_name", rule: "a", key: "name")),
        InvalidCase("empty name", simple(""),
                    Expected("validation.empty_rule_name", key: "rule[0].name")),
        InvalidCase("blank name", simple("  \t"),
                    Expected("validation.empty_rule_name", key: "rule[0].name")),
        InvalidCase("missing name", "[[rule]]\nlisten_port = 1\ntarget = \"h:1\"\n",
                    Expected("validation.empty_rule_name", key: "rule[0].name")),
        InvalidCase("unnamed second rule is named by position", minimalRule + simple(""),
                    Expected("validation.empty_rule_name", key: "rule[1].name")),
        InvalidCase("unnamed rule qualifies all its keys",
                    "[[rule]]\nlisten_port = 0\ntarget = \"h:1\"\n",
                    Expected("validation.empty_rule_name", key: "rule[0].name"),
                    Expected("validation.port_out_of_range", key: "rule[0].listen_port")),
        InvalidCase("name of the wrong type", "[[rule]]\nname = 5\nlisten_port = 1\ntarget = \"h:1\"\n",
                    Expected("validation.wrong_type", key: "rule[0].name")),
    ]

    @Test("invalid names", arguments: cases)
    func invalid(_ testCase: InvalidCase) { check(testCase) }

    @Test func namesAreCaseSensitiveAndMayRepeatAcrossCase() throws {
        let config = try parseValid(simple("Web") + simple("web", listen: "listen_port = 8081"))
        #expect(config.rules.map(\.name) == ["Web", "web"])
    }
}

@Suite("Listen ports")
struct ListenPortTests {
    static let cases: [InvalidCase] = [
        InvalidCase("both listen_port and listen_ports",
                    simple(listen: "listen_port = 80\nlisten_ports = \"80-81\""),
                    Expected("validation.listen_port_conflict", rule: "web", key: "listen_port"),
                    messageContains: ["not both"]),
        InvalidCase("neither listen key", simple(listen: ""),
                    Expected("validation.listen_port_conflict", rule: "web", key: "listen_port")),
        InvalidCase("listen_port 0", simple(listen: "listen_port = 0"),
                    Expected("validation.port_out_of_range", rule: "web", key: "listen_port")),
        InvalidCase("listen_port 65536", simple(listen: "listen_port = 65536"),
                    Expected("validation.port_out_of_range", rule: "web", key: "listen_port")),
        InvalidCase("listen_port negative", simple(listen: "listen_port = -1"),
                    Expected("validation.port_out_of_range", rule: "web", key: "listen_port")),
        InvalidCase("listen_port as a string", simple(listen: "listen_port = \"8080\""),
                    Expected("validation.wrong_type", rule: "web", key: "listen_port"),
                    messageContains: ["an integer", "listen_ports"]),
        InvalidCase("listen_port as a float", simple(listen: "listen_port = 8080.0"),
                    Expected("validation.wrong_type", rule: "web", key: "listen_port")),
        InvalidCase("listen_ports as an integer",
                    simple(listen: "listen_ports = 8000", target: "target = \"h:80\""),
                    Expected("validation.wrong_type", rule: "web", key: "listen_ports")),
        InvalidCase("listen_ports missing upper", simple(listen: "listen_ports = \"8000-\""),
                    Expected("validation.port_range_malformed", rule: "web", key: "listen_ports")),
        InvalidCase("listen_ports missing lower", simple(listen: "listen_ports = \"-8000\""),
                    Expected("validation.port_range_malformed", rule: "web", key: "listen_ports")),
        InvalidCase("listen_ports three parts", simple(listen: "listen_ports = \"1-2-3\""),
                    Expected("validation.port_range_malformed", rule: "web", key: "listen_ports")),
        InvalidCase("listen_ports letters", simple(listen: "listen_ports = \"80a\""),
                    Expected("validation.port_range_malformed", rule: "web", key: "listen_ports")),
        InvalidCase("listen_ports space inside a number", simple(listen: "listen_ports = \"80 00\""),
                    Expected("validation.port_range_malformed", rule: "web", key: "listen_ports")),
        InvalidCase("listen_ports hex", simple(listen: "listen_ports = \"0x50\""),
                    Expected("validation.port_range_malformed", rule: "web", key: "listen_ports")),
        InvalidCase("listen_ports negative", simple(listen: "listen_ports = \"-80\""),
                    Expected("validation.port_range_malformed", rule: "web", key: "listen_ports")),
        InvalidCase("listen_ports lone plus", simple(listen: "listen_ports = \"+\""),
                    Expected("validation.port_range_malformed", rule: "web", key: "listen_ports")),
        InvalidCase("listen_ports empty", simple(listen: "listen_ports = \"\""),
                    Expected("validation.port_range_malformed", rule: "web", key: "listen_ports")),
        InvalidCase("listen_ports inverted",
                    simple(listen: "listen_ports = \"8009-8000\"", target: "target = \"h:1-10\""),
                    Expected("validation.port_range_inverted", rule: "web", key: "listen_ports"),
                    messageContains: ["8000-8009"]),
        InvalidCase("listen_ports starting at 0", simple(listen: "listen_ports = \"0-10\""),
                    Expected("validation.port_out_of_range", rule: "web", key: "listen_ports")),
        InvalidCase("listen_ports past 65535", simple(listen: "listen_ports = \"65535-65536\""),
                    Expected("validation.port_out_of_range", rule: "web", key: "listen_ports")),
        InvalidCase("listen_ports huge number", simple(listen: "listen_ports = \"99999999999999999999\""),
                    Expected("validation.port_out_of_range", rule: "web", key: "listen_ports")),
    ]

    @Test("invalid listen ports", arguments: cases)
    func invalid(_ testCase: InvalidCase) { check(testCase) }

    /// Portunus trims each number and parses it with Rust's `u16::from_str`
    /// (which takes a leading "+"); files it accepts must keep working.
    @Test("Portunus-compatible spellings", arguments: [
        ("listen_ports = \" 8000 - 8001 \"", "target = \"h:9000-9001\"", PortRange(lower: 8000, upper: 8001)),
        ("listen_ports = \"+80\"", "target = \"h: 80\"", PortRange(port: 80)),
        ("listen_ports = \"\t1-+2\"", "target = \"h:3-4\"", PortRange(lower: 1, upper: 2)),
        ("listen_ports = \"0080\"", "target = \"h:80\"", PortRange(port: 80)),
    ])
    func compatible(listen: String, target: String, expected: PortRange) throws {
        #expect(try parseValid(simple(listen: listen, target: target)).rules[0].listenPorts == expected)
    }
}

@Suite("Targets")
struct TargetTests {
    static let cases: [InvalidCase] = [
        InvalidCase("both target and targets",
                    simple(target: "target = \"h:80\"\ntargets = [ { host = \"h\", port = 80 } ]"),
                    Expected("validation.target_conflict", rule: "web", key: "target")),
        InvalidCase("neither target key", simple(target: ""),
                    Expected("validation.target_conflict", rule: "web", key: "target")),
        InvalidCase("empty targets", simple(target: "targets = []"),
                    Expected("validation.empty_targets", rule: "web", key: "targets")),
        InvalidCase("targets is a string", simple(target: "targets = \"h:80\""),
                    Expected("validation.wrong_type", rule: "web", key: "targets")),
        InvalidCase("targets element is a string", simple(target: "targets = [ \"h:80\" ]"),
                    Expected("validation.wrong_type", rule: "web", key: "targets[0]")),
        InvalidCase("target is an integer", simple(target: "target = 80"),
                    Expected("validation.wrong_type", rule: "web", key: "target")),
        InvalidCase("target without port", simple(target: "target = \"10.0.0.1\""),
                    Expected("validation.port_range_malformed", rule: "web", key: "target"),
                    messageContains: ["no port"]),
        InvalidCase("bracketed target without port", simple(target: "target = \"[::1]\""),
                    Expected("validation.port_range_malformed", rule: "web", key: "target")),
        InvalidCase("target port 0", simple(target: "target = \"h:0\""),
                    Expected("validation.port_out_of_range", rule: "web", key: "target")),
        InvalidCase("target port 65536", simple(target: "target = \"h:65536\""),
                    Expected("validation.port_out_of_range", rule: "web", key: "target")),
        InvalidCase("target range inverted",
                    simple(listen: "listen_ports = \"1-11\"", target: "target = \"h:90-80\""),
                    Expected("validation.port_range_inverted", rule: "web", key: "target")),
        InvalidCase("target empty port", simple(target: "target = \"h:\""),
                    Expected("validation.port_range_malformed", rule: "web", key: "target")),
        InvalidCase("bad host and bad port both reported", simple(target: "target = \"bad_host:0\""),
                    Expected("validation.host_invalid", rule: "web", key: "target"),
                    Expected("validation.port_out_of_range", rule: "web", key: "target")),
        InvalidCase("table port 70000", simple(target: "targets = [ { host = \"h\", port = 70000 } ]"),
                    Expected("validation.port_out_of_range", rule: "web", key: "targets[0].port")),
        InvalidCase("table port malformed string",
                    simple(target: "targets = [ { host = \"h\", port = \"http\" } ]"),
                    Expected("validation.port_range_malformed", rule: "web", key: "targets[0].port")),
        InvalidCase("table port boolean", simple(target: "targets = [ { host = \"h\", port = true } ]"),
                    Expected("validation.wrong_type", rule: "web", key: "targets[0].port")),
        InvalidCase("table host missing", simple(target: "targets = [ { port = 80 } ]"),
                    Expected("validation.missing_key", rule: "web", key: "targets[0].host")),
        InvalidCase("table port missing", simple(target: "targets = [ { host = \"h\" } ]"),
                    Expected("validation.missing_key", rule: "web", key: "targets[0].port")),
        InvalidCase("table host of the wrong type", simple(target: "targets = [ { host = 10, port = 80 } ]"),
                    Expected("validation.wrong_type", rule: "web", key: "targets[0].host")),
        InvalidCase("negative priority",
                    simple(target: "targets = [ { host = \"h\", port = 80, priority = -1 } ]"),
                    Expected("validation.value_out_of_range", rule: "web", key: "targets[0].priority")),
        InvalidCase("priority as a string",
                    simple(target: "targets = [ { host = \"h\", port = 80, priority = \"high\" } ]"),
                    Expected("validation.wrong_type", rule: "web", key: "targets[0].priority")),
        InvalidCase("unknown key in a target",
                    simple(target: "targets = [ { host = \"h\", port = 80, weight = 2 } ]"),
                    Expected("validation.unknown_key", rule: "web", key: "targets[0].weight")),
        InvalidCase("second target is the bad one",
                    simple(target: "targets = [ { host = \"a\", port = 80 }, { host = \"b\", port = 0 } ]"),
                    Expected("validation.port_out_of_range", rule: "web", key: "targets[1].port")),
    ]

    @Test("invalid targets", arguments: cases)
    func invalid(_ testCase: InvalidCase) { check(testCase) }
}

@Suite("Range widths")
struct RangeWidthTests {
    static let cases: [InvalidCase] = [
        InvalidCase("single listen port, target range",
                    simple(listen: "listen_port = 80", target: "target = \"h:80-81\""),
                    Expected("validation.range_width_mismatch", rule: "web", key: "target")),
        InvalidCase("listen range, single target port",
                    simple(listen: "listen_ports = \"80-81\"", target: "target = \"h:80\""),
                    Expected("validation.range_width_mismatch", rule: "web", key: "target")),
        InvalidCase("ranges of different widths",
                    simple(listen: "listen_ports = \"8000-8009\"", target: "target = \"h:9000-9008\""),
                    Expected("validation.range_width_mismatch", rule: "web", key: "target"),
                    messageContains: ["10", "9"]),
        InvalidCase("table form range width",
                    simple(listen: "listen_port = 80", target: "targets = [ { host = \"h\", port = \"90-91\" } ]"),
                    Expected("validation.range_width_mismatch", rule: "web", key: "targets[0].port")),
        InvalidCase("multi-target with one ranged target",
                    simple(target: "targets = [ { host = \"a\", port = 80 }, { host = \"b\", port = \"80-81\" } ]"),
                    Expected("validation.range_width_mismatch", rule: "web", key: "targets[1].port")),
        InvalidCase("multi-target with a listen range",
                    simple(listen: "listen_ports = \"80-81\"",
                           target: "targets = [ { host = \"a\", port = \"80-81\" }, { host = \"b\", port = \"80-81\" } ]"),
                    Expected("validation.multi_target_with_range", rule: "web", key: "listen_ports"),
                    messageContains: ["2 targets"]),
    ]

    @Test("mismatched widths", arguments: cases)
    func invalid(_ testCase: InvalidCase) { check(testCase) }

    @Test("matching widths", arguments: [
        ("listen_port = 80", "target = \"h:443\"", 1),
        ("listen_ports = \"8000-8009\"", "target = \"h:9000-9009\"", 10),
        ("listen_ports = \"1-1\"", "target = \"h:1-1\"", 1),
        ("listen_ports = \"1-65535\"", "target = \"h:1-65535\"", 65535),
        ("listen_ports = \"80-81\"", "targets = [ { host = \"h\", port = \"90-91\" } ]", 2),
        ("listen_port = 80", "targets = [ { host = \"a\", port = 1 }, { host = \"b\", port = 2 } ]", 1),
    ])
    func valid(listen: String, target: String, width: Int) throws {
        let config = try parseValid(simple(listen: listen, target: target))
        #expect(config.rules[0].listenPorts.count == width)
        #expect(config.rules[0].targets.allSatisfy { $0.ports.count == width })
    }
}

@Suite("Protocols and PROXY protocol")
struct ProtocolTests {
    static let cases: [InvalidCase] = [
        InvalidCase("unknown protocol", simple("web", #"protocol = "sctp""#),
                    Expected("validation.protocol_unknown", rule: "web", key: "protocol"),
                    messageContains: [#""sctp""#, #""tcp", "udp""#]),
        InvalidCase("protocol is case-sensitive", simple("web", #"protocol = "TCP""#),
                    Expected("validation.protocol_unknown", rule: "web", key: "protocol")),
        InvalidCase("protocol of the wrong type", simple("web", "protocol = 6"),
                    Expected("validation.wrong_type", rule: "web", key: "protocol")),
        InvalidCase("proxy_protocol v3",
                    simple(target: #"targets = [ { host = "h", port = 80, proxy_protocol = "v3" } ]"#),
                    Expected("validation.proxy_protocol_invalid", rule: "web", key: "targets[0].proxy_protocol"),
                    messageContains: [#""v3""#, #""v1", "v2""#]),
        InvalidCase("proxy_protocol upper-case",
                    simple(target: #"targets = [ { host = "h", port = 80, proxy_protocol = "V1" } ]"#),
                    Expected("validation.proxy_protocol_invalid", rule: "web", key: "targets[0].proxy_protocol")),
        InvalidCase("proxy_protocol empty",
                    simple(target: #"targets = [ { host = "h", port = 80, proxy_protocol = "" } ]"#),
                    Expected("validation.proxy_protocol_invalid", rule: "web", key: "targets[0].proxy_protocol")),
        InvalidCase("proxy_protocol integer (anything else is invalid, per the seed)",
                    simple(target: #"targets = [ { host = "h", port = 80, proxy_protocol = 2 } ]"#),
                    Expected("validation.proxy_protocol_invalid", rule: "web", key: "targets[0].proxy_protocol")),
        InvalidCase("proxy_protocol boolean",
                    simple(target: #"targets = [ { host = "h", port = 80, proxy_protocol = true } ]"#),
                    Expected("validation.proxy_protocol_invalid", rule: "web", key: "targets[0].proxy_protocol")),
        InvalidCase("proxy_protocol on a UDP rule",
                    simple("web", #"protocol = "udp""#,
                           target: #"targets = [ { host = "h", port = 53, proxy_protocol = "v1" } ]"#),
                    Expected("validation.proxy_protocol_on_unsupported_rule", rule: "web",
                             key: "targets[0].proxy_protocol")),
        InvalidCase("every UDP target carrying proxy_protocol is named",
                    simple("web", #"protocol = "udp""#, target: """
                        targets = [ { host = "a", port = 53, proxy_protocol = "v2" },
                                    { host = "b", port = 53 },
                                    { host = "c", port = 53, proxy_protocol = "v3" } ]
                        """),
                    Expected("validation.proxy_protocol_on_unsupported_rule", rule: "web",
                             key: "targets[0].proxy_protocol"),
                    Expected("validation.proxy_protocol_on_unsupported_rule", rule: "web",
                             key: "targets[2].proxy_protocol")),
        InvalidCase("UDP inherited from [defaults] still rejects proxy_protocol",
                    "[defaults]\nprotocol = \"udp\"\n"
                        + simple(target: #"targets = [ { host = "h", port = 53, proxy_protocol = "v2" } ]"#),
                    Expected("validation.proxy_protocol_on_unsupported_rule", rule: "web",
                             key: "targets[0].proxy_protocol")),
        InvalidCase("unknown protocol: proxy value still judged, not the UDP rule",
                    simple("web", #"protocol = "sctp""#,
                           target: #"targets = [ { host = "h", port = 80, proxy_protocol = "v9" } ]"#),
                    Expected("validation.protocol_unknown", rule: "web", key: "protocol"),
                    Expected("validation.proxy_protocol_invalid", rule: "web", key: "targets[0].proxy_protocol")),
    ]

    @Test("invalid protocols", arguments: cases)
    func invalid(_ testCase: InvalidCase) { check(testCase) }

    @Test func proxyVersionsParse() throws {
        let config = try parseValid(simple(target: """
            targets = [ { host = "a", port = 1, proxy_protocol = "v1" },
                        { host = "b", port = 1, proxy_protocol = "v2" },
                        { host = "c", port = 1 } ]
            """))
        #expect(config.rules[0].targets.map(\.proxyProtocol) == [.v1, .v2, nil])
    }
}

@Suite("Listen port overlaps")
struct OverlapTests {
    static let cases: [InvalidCase] = [
        InvalidCase("same port, same protocol",
                    simple("a") + simple("b"),
                    Expected("validation.listen_port_overlap", rule: "b", key: "listen_port"),
                    messageContains: [#"rule "a""#, "8080"]),
        InvalidCase("range overlaps a single port",
                    simple("a", listen: #"listen_ports = "8000-8009""#, target: #"target = "h:1-10""#)
                        + simple("b", listen: "listen_port = 8005"),
                    Expected("validation.listen_port_overlap", rule: "b", key: "listen_port"),
                    messageContains: [#"rule "a""#, "8005"]),
        InvalidCase("ranges overlap partially",
                    simple("a", listen: #"listen_ports = "8000-8009""#, target: #"target = "h:1-10""#)
                        + simple("b", listen: #"listen_ports = "8009-8010""#, target: #"target = "h:1-2""#),
                    Expected("validation.listen_port_overlap", rule: "b", key: "listen_ports")),
        InvalidCase("UDP rules overlap too",
                    simple("a", #"protocol = "udp""#) + simple("b", #"protocol = "udp""#),
                    Expected("validation.listen_port_overlap", rule: "b", key: "listen_port")),
        InvalidCase("three rules on one port: each pair once",
                    simple("a") + simple("b") + simple("c"),
                    Expected("validation.listen_port_overlap", rule: "b", key: "listen_port"),
                    Expected("validation.listen_port_overlap", rule: "c", key: "listen_port"),
                    Expected("validation.listen_port_overlap", rule: "c", key: "listen_port")),
    ]

    @Test("overlapping rules", arguments: cases)
    func invalid(_ testCase: InvalidCase) { check(testCase) }

    @Test func differentProtocolsMayShareAPort() throws {
        let config = try parseValid(simple("dns-tcp") + simple("dns-udp", #"protocol = "udp""#))
        #expect(config.rules.map(\.proto) == [.tcp, .udp])
    }

    @Test func adjacentRangesDoNotOverlap() throws {
        let config = try parseValid(
            simple("a", listen: #"listen_ports = "8000-8009""#, target: #"target = "h:1-10""#)
                + simple("b", listen: #"listen_ports = "8010-8019""#, target: #"target = "h:1-10""#))
        #expect(config.rules.count == 2)
    }
}
