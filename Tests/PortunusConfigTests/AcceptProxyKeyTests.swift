// Issue 16's additions to the Portunus schema: `accept_proxy` and
// `accept_proxy_timeout_secs` (per rule, inherited from [defaults]) and the v2-only
// target options `proxy_protocol_tlvs`, `proxy_protocol_unique_id`, `proxy_protocol_crc32c`.
import PortunusConfig
import Testing

/// A TCP rule with one target string; `extra` lines go after it.
private func tcp(_ name: String = "web", _ extra: String = "", port: Int = 8080) -> String {
    rule(name, "listen_port = \(port)\ntarget = \"10.0.0.1:80\"\n\(extra)")
}

/// A UDP rule with one target string; `extra` lines go after it.
private func udp(_ name: String = "dns", _ extra: String = "", port: Int = 5353) -> String {
    rule(name, "protocol = \"udp\"\nlisten_port = \(port)\ntarget = \"10.0.0.1:53\"\n\(extra)")
}

/// A TCP rule with one `targets` entry whose extra fields are `fields`.
private func oneTarget(_ fields: String, name: String = "web", extra: String = "") -> String {
    rule(name, "listen_port = 8080\ntargets = [ { host = \"10.0.0.1\", port = 443\(fields.isEmpty ? "" : ", " + fields) } ]\n\(extra)")
}

@Suite("accept_proxy")
struct AcceptProxyTests {
    static let cases: [InvalidCase] = [
        InvalidCase("unknown version", tcp("web", #"accept_proxy = "v3""#),
                    Expected("validation.accept_proxy_invalid", rule: "web", key: "accept_proxy"),
                    messageContains: [#""v3""#, #""v1", "v2", "any""#]),
        InvalidCase("upper-case", tcp("web", #"accept_proxy = "V2""#),
                    Expected("validation.accept_proxy_invalid", rule: "web", key: "accept_proxy"),
                    messageContains: [#""V2""#]),
        InvalidCase("empty string", tcp("web", #"accept_proxy = """#),
                    Expected("validation.accept_proxy_invalid", rule: "web", key: "accept_proxy")),
        InvalidCase("a boolean (anything else is invalid, as proxy_protocol)", tcp("web", "accept_proxy = true"),
                    Expected("validation.accept_proxy_invalid", rule: "web", key: "accept_proxy"),
                    messageContains: ["a boolean (true)", #""v1", "v2", "any""#]),
        InvalidCase("an integer", tcp("web", "accept_proxy = 2"),
                    Expected("validation.accept_proxy_invalid", rule: "web", key: "accept_proxy"),
                    messageContains: ["an integer (2)"]),
        InvalidCase("bad value in [defaults]", "[defaults]\naccept_proxy = \"proxy\"\n" + tcp(),
                    Expected("validation.accept_proxy_invalid", key: "defaults.accept_proxy"),
                    messageContains: [#""proxy""#, #""v1", "v2", "any""#]),
        InvalidCase("unnamed rule is named by position", "[[rule]]\nlisten_port = 1\ntarget = \"h:1\"\naccept_proxy = \"x\"\n",
                    Expected("validation.empty_rule_name", key: "rule[0].name"),
                    Expected("validation.accept_proxy_invalid", key: "rule[0].accept_proxy")),
        // UDP: PROXY on the way in is TCP only.
        InvalidCase("on a UDP rule", udp("dns", #"accept_proxy = "v2""#),
                    Expected("validation.accept_proxy_invalid", rule: "dns", key: "accept_proxy"),
                    messageContains: ["TCP only", "remove accept_proxy from this UDP rule"]),
        InvalidCase("on a UDP rule: the value is not judged as well", udp("dns", #"accept_proxy = "v9""#),
                    Expected("validation.accept_proxy_invalid", rule: "dns", key: "accept_proxy"),
                    messageContains: ["TCP only"]),
        InvalidCase("on a rule that is UDP through [defaults]",
                    "[defaults]\nprotocol = \"udp\"\n" + tcp("dns", #"accept_proxy = "any""#),
                    Expected("validation.accept_proxy_invalid", rule: "dns", key: "accept_proxy"),
                    messageContains: ["TCP only"]),
        InvalidCase("in a [defaults] whose protocol is udp",
                    "[defaults]\nprotocol = \"udp\"\naccept_proxy = \"v2\"\n" + tcp(),
                    Expected("validation.accept_proxy_invalid", key: "defaults.accept_proxy"),
                    messageContains: ["TCP only", #"protocol = "udp""#]),
        InvalidCase("[defaults] udp refuses it even when every rule is TCP",
                    "[defaults]\nprotocol = \"udp\"\naccept_proxy = \"v1\"\n" + tcp("web", #"protocol = "tcp""#),
                    Expected("validation.accept_proxy_invalid", key: "defaults.accept_proxy")),
        InvalidCase("unknown protocol: the value is still judged",
                    tcp("web", "protocol = \"sctp\"\naccept_proxy = \"v4\""),
                    Expected("validation.protocol_unknown", rule: "web", key: "protocol"),
                    Expected("validation.accept_proxy_invalid", rule: "web", key: "accept_proxy")),
        InvalidCase("misspelt key gets a suggestion", tcp("web", #"accept_prox = "v2""#),
                    Expected("validation.unknown_key", rule: "web", key: "accept_prox"),
                    messageContains: [#"did you mean "accept_proxy""#]),
        InvalidCase("misspelt key in [defaults] gets a suggestion", "[defaults]\naccept_proxy_timeout = 5\n" + tcp(),
                    Expected("validation.unknown_key", key: "defaults.accept_proxy_timeout"),
                    messageContains: [#"did you mean "accept_proxy_timeout_secs""#]),
    ]

    @Test("invalid accept_proxy", arguments: cases)
    func invalid(_ testCase: InvalidCase) { check(testCase) }

    @Test("each value parses", arguments: [("v1", AcceptProxy.v1), ("v2", .v2), ("any", .any)])
    func eachValue(_ text: String, _ mode: AcceptProxy) throws {
        let own = try parseValid(tcp("web", "accept_proxy = \"\(text)\""))
        #expect(own.rules[0].acceptProxy == mode)
        let inherited = try parseValid("[defaults]\naccept_proxy = \"\(text)\"\n" + tcp())
        #expect(inherited.defaults.acceptProxy == mode)
        #expect(inherited.rules[0].acceptProxy == mode)
        #expect(mode.rawValue == text)
    }

    /// Absent everywhere, as in every Portunus file: no header is expected, the timeout
    /// is the default, and nothing is warned about.
    @Test func absentMeansOff() throws {
        let config = try parseValid(tcp())
        #expect(config.rules[0].acceptProxy == nil)
        #expect(config.rules[0].acceptProxyTimeout == .seconds(5))
        #expect(config.defaults.acceptProxy == nil && config.defaults.acceptProxyTimeout == .seconds(5))
        #expect(config.warnings.isEmpty)
        let portunus = try ConfigLoader.load(path: Fixtures.path("valid_portunus_full_example.toml"))
        #expect(portunus.rules.allSatisfy { $0.acceptProxy == nil && $0.acceptProxyTimeout == Rule.defaultAcceptProxyTimeout })
    }

    /// A rule inherits [defaults].accept_proxy like idle_timeout_secs, and its own value wins.
    @Test func inheritsAndOverrides() throws {
        let config = try parseValid("[defaults]\naccept_proxy = \"v2\"\n"
            + tcp("inherits", port: 2000)
            + tcp("own", #"accept_proxy = "v1""#, port: 2001)
            + tcp("any", #"accept_proxy = "any""#, port: 2002))
        #expect(config.rules.map(\.acceptProxy) == [.v2, .v1, .any])
    }

    /// A [defaults] value applies to the TCP rules only: a UDP rule in the same file
    /// loads, without the header and without a diagnostic.
    @Test func aUDPRuleDoesNotInheritIt() throws {
        let config = try parseValid("[defaults]\naccept_proxy = \"v2\"\n" + tcp() + udp())
        #expect(config.rules.map(\.proto) == [.tcp, .udp])
        #expect(config.rules.map(\.acceptProxy) == [.v2, nil])
        #expect(config.warnings.isEmpty)
    }

    /// A [defaults] that is UDP and a rule that turns TCP: the rule may accept PROXY itself.
    @Test func aTCPRuleUnderUDPDefaultsMaySetItsOwn() throws {
        let config = try parseValid("[defaults]\nprotocol = \"udp\"\n"
            + tcp("web", "protocol = \"tcp\"\naccept_proxy = \"v2\"") + udp())
        #expect(config.rules.map(\.acceptProxy) == [.v2, nil])
    }

    /// Like every validation problem other than `metrics.listen`, the diagnostic names the
    /// rule and key and carries no line (SPEC.md §2; PortunusConfig.md).
    @Test func theDiagnosticAsPrinted() throws {
        let error = try #require(throws: ConfigError.self) {
            try ConfigLoader.parse(tcp("web", #"accept_proxy = "v3""#), path: "edge.toml")
        }
        let diagnostic = try #require(error.diagnostics.first)
        #expect(diagnostic.line == nil && diagnostic.column == nil)
        #expect(diagnostic.description
            == #"error[validation.accept_proxy_invalid]: rule "web", accept_proxy: "v3" is not one of "v1", "v2", "any""#)
    }
}

@Suite("accept_proxy_timeout_secs")
struct AcceptProxyTimeoutTests {
    static let cases: [InvalidCase] = [
        InvalidCase("0 in a rule", tcp("web", "accept_proxy = \"v2\"\naccept_proxy_timeout_secs = 0"),
                    Expected("validation.value_out_of_range", rule: "web", key: "accept_proxy_timeout_secs"),
                    messageContains: ["within 1...3600"]),
        InvalidCase("3601 in a rule", tcp("web", "accept_proxy = \"v2\"\naccept_proxy_timeout_secs = 3601"),
                    Expected("validation.value_out_of_range", rule: "web", key: "accept_proxy_timeout_secs"),
                    messageContains: ["3601", "within 1...3600"]),
        InvalidCase("negative in [defaults]", "[defaults]\naccept_proxy_timeout_secs = -1\n" + tcp(),
                    Expected("validation.value_out_of_range", key: "defaults.accept_proxy_timeout_secs")),
        InvalidCase("the TOML maximum in [defaults]", "[defaults]\naccept_proxy_timeout_secs = 9223372036854775807\n" + tcp(),
                    Expected("validation.value_out_of_range", key: "defaults.accept_proxy_timeout_secs")),
        InvalidCase("a float", tcp("web", "accept_proxy = \"v2\"\naccept_proxy_timeout_secs = 1.5"),
                    Expected("validation.wrong_type", rule: "web", key: "accept_proxy_timeout_secs"),
                    messageContains: ["an integer"]),
        InvalidCase("a string", "[defaults]\naccept_proxy_timeout_secs = \"5\"\n" + tcp(),
                    Expected("validation.wrong_type", key: "defaults.accept_proxy_timeout_secs")),
        InvalidCase("out of range on a UDP rule is still out of range", udp("dns", "accept_proxy_timeout_secs = 0"),
                    Expected("validation.value_out_of_range", rule: "dns", key: "accept_proxy_timeout_secs")),
    ]

    @Test("invalid accept_proxy_timeout_secs", arguments: cases)
    func invalid(_ testCase: InvalidCase) { check(testCase) }

    @Test("bounds are accepted", arguments: [1, 5, 3600])
    func bounds(_ secs: Int) throws {
        let own = try parseValid(tcp("web", "accept_proxy = \"v2\"\naccept_proxy_timeout_secs = \(secs)"))
        #expect(own.rules[0].acceptProxyTimeout == .seconds(secs))
        let inherited = try parseValid("[defaults]\naccept_proxy_timeout_secs = \(secs)\n" + tcp("web", #"accept_proxy = "v2""#))
        #expect(inherited.defaults.acceptProxyTimeout == .seconds(secs))
        #expect(inherited.rules[0].acceptProxyTimeout == .seconds(secs))
        #expect(Limits.maxAcceptProxyTimeoutSeconds == 3600)
    }

    @Test func inheritsAndOverrides() throws {
        let config = try parseValid("[defaults]\naccept_proxy = \"any\"\naccept_proxy_timeout_secs = 20\n"
            + tcp("inherits", port: 2000)
            + tcp("own", "accept_proxy_timeout_secs = 2", port: 2001)
            + tcp("both", "accept_proxy = \"v1\"\naccept_proxy_timeout_secs = 3600", port: 2002))
        #expect(config.rules.map(\.acceptProxyTimeout) == [.seconds(20), .seconds(2), .seconds(3600)])
        #expect(config.rules.map(\.acceptProxy) == [.any, .any, .v1])
        #expect(config.warnings.isEmpty)
    }

    /// A timeout in [defaults] alone is silent: rules may set accept_proxy themselves.
    @Test func aDefaultTimeoutAloneIsSilent() throws {
        let config = try parseValid("[defaults]\naccept_proxy_timeout_secs = 30\n" + tcp() + udp())
        #expect(config.warnings.isEmpty)
        #expect(config.rules.map(\.acceptProxyTimeout) == [.seconds(30), .seconds(30)])
        #expect(config.rules.map(\.acceptProxy) == [nil, nil])
    }

    /// A rule's own timeout that can never be used is a warning (the file loads): the
    /// operator most likely forgot accept_proxy.
    @Test("unused timeout is a warning", arguments: [
        ("on a TCP rule without accept_proxy", tcp("web", "accept_proxy_timeout_secs = 9"), "web", "set accept_proxy"),
        ("on a UDP rule", udp("web", "accept_proxy_timeout_secs = 9"), "web", "TCP only"),
        ("on a UDP rule while [defaults] accepts PROXY",
         "[defaults]\naccept_proxy = \"v2\"\n" + udp("web", "accept_proxy_timeout_secs = 9"), "web", "TCP only"),
    ])
    func unusedTimeoutWarns(_ label: String, _ text: String, _ rule: String, _ fragment: String) throws {
        let config = try parseValid(text)
        #expect(config.warnings.map(Expected.init)
            == [Expected("validation.accept_proxy_timeout_unused", rule: rule, key: "accept_proxy_timeout_secs")], "\(label)")
        let warning = try #require(config.warnings.first)
        #expect(warning.severity == .warning)
        #expect(warning.message.contains(fragment), "\(warning.message)")
        #expect(warning.description.hasPrefix("<string>:") == false)
        #expect(warning.description.hasPrefix("warning[validation.accept_proxy_timeout_unused]: rule \"\(rule)\", accept_proxy_timeout_secs: "))
        #expect(config.rules[0].acceptProxy == nil && config.rules[0].acceptProxyTimeout == .seconds(9))
    }
}

@Suite("PROXY v2 target options")
struct ProxyProtocolOptionTests {
    static let keys = ["proxy_protocol_tlvs", "proxy_protocol_unique_id", "proxy_protocol_crc32c"]

    /// Every key, set to either value, on a target that does not send v2.
    static let needsV2Cases: [InvalidCase] = keys.flatMap { key in
        ["true", "false"].flatMap { value in [
            InvalidCase("\(key) = \(value) without proxy_protocol", oneTarget("\(key) = \(value)"),
                        Expected("validation.proxy_protocol_option_needs_v2", rule: "web", key: "targets[0].\(key)"),
                        messageContains: [#"target "10.0.0.1:443""#, "sends no PROXY header", key, #"proxy_protocol = "v2""#]),
            InvalidCase("\(key) = \(value) with proxy_protocol v1", oneTarget(#"proxy_protocol = "v1", "# + "\(key) = \(value)"),
                        Expected("validation.proxy_protocol_option_needs_v2", rule: "web", key: "targets[0].\(key)"),
                        messageContains: [#"target "10.0.0.1:443""#, #"proxy_protocol = "v1""#, "v1 carries no TLVs", key]),
        ] }
    }

    static let cases: [InvalidCase] = [
        InvalidCase("all three on a v1 target: each named, in schema order",
                    oneTarget(#"proxy_protocol = "v1", proxy_protocol_crc32c = true, proxy_protocol_tlvs = true, proxy_protocol_unique_id = false"#),
                    Expected("validation.proxy_protocol_option_needs_v2", rule: "web", key: "targets[0].proxy_protocol_tlvs"),
                    Expected("validation.proxy_protocol_option_needs_v2", rule: "web", key: "targets[0].proxy_protocol_unique_id"),
                    Expected("validation.proxy_protocol_option_needs_v2", rule: "web", key: "targets[0].proxy_protocol_crc32c")),
        InvalidCase("the second target is the one named",
                    rule("web", """
                        listen_port = 8080
                        targets = [ { host = "a.internal", port = 443, proxy_protocol = "v2", proxy_protocol_unique_id = true },
                                    { host = "::1", port = 444, proxy_protocol_crc32c = true } ]
                        """),
                    Expected("validation.proxy_protocol_option_needs_v2", rule: "web", key: "targets[1].proxy_protocol_crc32c"),
                    messageContains: [#"target "[::1]:444""#]),
        InvalidCase("wrong type on a v2 target", oneTarget(#"proxy_protocol = "v2", proxy_protocol_tlvs = "yes""#),
                    Expected("validation.wrong_type", rule: "web", key: "targets[0].proxy_protocol_tlvs"),
                    messageContains: ["a boolean"]),
        InvalidCase("an integer on a v2 target", oneTarget(#"proxy_protocol = "v2", proxy_protocol_crc32c = 1"#),
                    Expected("validation.wrong_type", rule: "web", key: "targets[0].proxy_protocol_crc32c")),
        InvalidCase("wrong type on a v1 target: one fix, one line",
                    oneTarget(#"proxy_protocol = "v1", proxy_protocol_unique_id = "yes""#),
                    Expected("validation.proxy_protocol_option_needs_v2", rule: "web", key: "targets[0].proxy_protocol_unique_id")),
        InvalidCase("next to an invalid proxy_protocol only that is reported",
                    oneTarget(#"proxy_protocol = "v3", proxy_protocol_unique_id = true"#),
                    Expected("validation.proxy_protocol_invalid", rule: "web", key: "targets[0].proxy_protocol")),
        InvalidCase("on a UDP rule's target, as proxy_protocol",
                    rule("dns", #"protocol = "udp""# + "\nlisten_port = 5353\n"
                        + #"targets = [ { host = "h", port = 53, proxy_protocol = "v2", proxy_protocol_crc32c = true } ]"#),
                    Expected("validation.proxy_protocol_on_unsupported_rule", rule: "dns", key: "targets[0].proxy_protocol"),
                    Expected("validation.proxy_protocol_on_unsupported_rule", rule: "dns", key: "targets[0].proxy_protocol_crc32c"),
                    messageContains: ["TCP only"]),
        InvalidCase("on a UDP rule's target without proxy_protocol",
                    rule("dns", #"protocol = "udp""# + "\nlisten_port = 5353\n"
                        + #"targets = [ { host = "h", port = 53, proxy_protocol_tlvs = false } ]"#),
                    Expected("validation.proxy_protocol_on_unsupported_rule", rule: "dns", key: "targets[0].proxy_protocol_tlvs")),
        InvalidCase("misspelt option gets a suggestion", oneTarget(#"proxy_protocol = "v2", proxy_protocol_tlv = true"#),
                    Expected("validation.unknown_key", rule: "web", key: "targets[0].proxy_protocol_tlv"),
                    messageContains: [#"did you mean "proxy_protocol_tlvs""#]),
    ]

    @Test("option without v2", arguments: needsV2Cases)
    func needsV2(_ testCase: InvalidCase) { check(testCase) }

    @Test("invalid options", arguments: cases)
    func invalid(_ testCase: InvalidCase) { check(testCase) }

    @Test("v2 options parse", arguments: [
        ("", true, false, false),
        ("proxy_protocol_tlvs = false", false, false, false),
        ("proxy_protocol_tlvs = true, proxy_protocol_unique_id = true", true, true, false),
        ("proxy_protocol_crc32c = true", true, false, true),
        ("proxy_protocol_tlvs = false, proxy_protocol_unique_id = false, proxy_protocol_crc32c = false", false, false, false),
        ("proxy_protocol_tlvs = false, proxy_protocol_unique_id = true, proxy_protocol_crc32c = true", false, true, true),
    ])
    func v2Options(_ fields: String, _ tlvs: Bool, _ uniqueID: Bool, _ crc32c: Bool) throws {
        let config = try parseValid(oneTarget(#"proxy_protocol = "v2""# + (fields.isEmpty ? "" : ", " + fields)))
        let target = try #require(config.rules.first?.targets.first)
        #expect(target.proxyProtocol == .v2)
        #expect(target.proxyProtocolTLVs == tlvs && target.proxyProtocolUniqueID == uniqueID
            && target.proxyProtocolCRC32C == crc32c)
    }

    /// Targets without the keys keep the defaults, whatever they send.
    @Test func defaultsWithoutTheKeys() throws {
        let config = try parseValid(rule("web", """
            listen_port = 8080
            targets = [ { host = "a", port = 1, proxy_protocol = "v1" }, { host = "b", port = 1, proxy_protocol = "v2" },
                        { host = "c", port = 1 } ]
            """) + tcp("one", port: 8081))
        for target in config.rules.flatMap(\.targets) {
            #expect(target.proxyProtocolTLVs && !target.proxyProtocolUniqueID && !target.proxyProtocolCRC32C)
        }
        let built = Target(host: .name("a"), ports: PortRange(port: 1))
        #expect(built.proxyProtocolTLVs && !built.proxyProtocolUniqueID && !built.proxyProtocolCRC32C)
    }
}

@Suite("Issue 16 fixtures")
struct AcceptProxyFixtureTests {
    @Test func validAcceptProxy() throws {
        let config = try ConfigLoader.load(path: Fixtures.path("valid_accept_proxy.toml"))
        #expect(config.warnings.isEmpty)
        #expect(config.defaults.acceptProxy == .any && config.defaults.acceptProxyTimeout == .seconds(10))
        #expect(config.rules.map(\.name) == ["web", "smtp", "dns"])
        #expect(config.rules.map(\.acceptProxy) == [.any, .v1, nil])
        #expect(config.rules.map(\.acceptProxyTimeout) == [.seconds(10), .seconds(3), .seconds(10)])
        let web = config.rules[0].targets
        #expect(web.map(\.proxyProtocol) == [.v2, .v1])
        #expect(web.map(\.proxyProtocolTLVs) == [false, true])
        #expect(web.map(\.proxyProtocolUniqueID) == [true, false])
        #expect(web.map(\.proxyProtocolCRC32C) == [true, false])
    }

    @Test("invalid fixtures", arguments: [
        ("invalid_accept_proxy_on_udp.toml", Expected("validation.accept_proxy_invalid", rule: "dns", key: "accept_proxy")),
        ("invalid_proxy_option_needs_v2.toml",
         Expected("validation.proxy_protocol_option_needs_v2", rule: "web", key: "targets[0].proxy_protocol_unique_id")),
    ])
    func invalidFixture(_ name: String, _ expected: Expected) throws {
        let error = try #require(throws: ConfigError.self) { try ConfigLoader.load(path: Fixtures.path(name)) }
        #expect(error.diagnostics.map(Expected.init) == [expected])
        #expect(error.path == Fixtures.path(name))
    }
}
