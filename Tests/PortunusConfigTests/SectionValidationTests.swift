// Table tests for [global], [defaults], [stats], unknown keys and wrong types.
import PortunusConfig
import Testing

@Suite("[global]")
struct GlobalSectionTests {
    static let cases: [InvalidCase] = [
        InvalidCase("log_level of the wrong type", "[global]\nlog_level = 3\n" + minimalRule,
                    Expected("validation.wrong_type", key: "global.log_level")),
        InvalidCase("log_format unknown", "[global]\nlog_format = \"text\"\n" + minimalRule,
                    Expected("validation.log_format_invalid", key: "global.log_format"),
                    messageContains: [#""json", "pretty""#]),
        InvalidCase("negative drain", "[global]\nshutdown_drain_secs = -1\n" + minimalRule,
                    Expected("validation.value_out_of_range", key: "global.shutdown_drain_secs")),
        InvalidCase("fractional drain", "[global]\nshutdown_drain_secs = 1.5\n" + minimalRule,
                    Expected("validation.wrong_type", key: "global.shutdown_drain_secs"),
                    messageContains: ["an integer", "floating-point"]),
        InvalidCase("label of the wrong type", "[global]\nlabel = 3\n" + minimalRule,
                    Expected("validation.wrong_type", key: "global.label")),
        InvalidCase("global is not a table", "global = 1\n" + minimalRule,
                    Expected("validation.wrong_type", key: "global")),
        InvalidCase("unknown key in [global] with a suggestion", "[global]\nlog_levl = \"info\"\n" + minimalRule,
                    Expected("validation.unknown_key", key: "global.log_levl"),
                    messageContains: ["[global]", #"did you mean "log_level""#]),
    ]

    @Test("invalid [global]", arguments: cases)
    func invalid(_ testCase: InvalidCase) { check(testCase) }

    @Test("every log level", arguments: LogLevel.allCases)
    func logLevels(_ level: LogLevel) throws {
        let config = try parseValid("[global]\nlog_level = \"\(level.rawValue)\"\n" + minimalRule)
        #expect(config.global.logFilter == LogFilter(level: level) || config.global.logFilter.defaultLevel == level)
        #expect(config.global.logFilter.directives.isEmpty && config.warnings.isEmpty)
    }

    /// Portunus runs a file whose log_level is no filter, with `warn`: so do we, and
    /// `--check` says so as a warning, not an error.
    @Test(arguments: ["portunus=verbose", "=debug", "portunus=", "a b", "[span]=info", "portunus:rule=debug"])
    func aLogLevelThatIsNoFilterIsAWarningAndRunsWithWarn(_ text: String) throws {
        let config = try parseValid("[global]\nlog_level = \"\(text)\"\n" + minimalRule)
        #expect(config.global.logFilter == LogFilter(level: .warn))
        #expect(config.warnings.map(\.code) == ["validation.log_level_invalid"])
        #expect(config.warnings.first?.key == "global.log_level")
        #expect(config.warnings.first?.description.contains("warning[validation.log_level_invalid]: global.log_level: ") == true)
    }

    @Test func explicitValues() throws {
        let config = try parseValid("""
            [global]
            label = "edge-1"
            log_level = "debug"
            log_format = "pretty"
            shutdown_drain_secs = 0
            """ + "\n" + minimalRule)
        #expect(config.global == GlobalSettings(label: "edge-1", logFilter: LogFilter("debug")!, logFormat: .pretty,
                                                shutdownDrain: .zero))
    }
}

@Suite("[defaults]")
struct DefaultsSectionTests {
    static let cases: [InvalidCase] = [
        InvalidCase("protocol unknown", "[defaults]\nprotocol = \"quic\"\n" + minimalRule,
                    Expected("validation.protocol_unknown", key: "defaults.protocol")),
        InvalidCase("udp_max_flows negative", "[defaults]\nudp_max_flows = -1\n" + minimalRule,
                    Expected("validation.value_out_of_range", key: "defaults.udp_max_flows")),
        InvalidCase("udp_flow_idle_secs negative", "[defaults]\nudp_flow_idle_secs = -5\n" + minimalRule,
                    Expected("validation.value_out_of_range", key: "defaults.udp_flow_idle_secs")),
        InvalidCase("prefer_ipv6 as a string", "[defaults]\nprefer_ipv6 = \"yes\"\n" + minimalRule,
                    Expected("validation.wrong_type", key: "defaults.prefer_ipv6"),
                    messageContains: ["a boolean"]),
        InvalidCase("unknown key in [defaults]", "[defaults]\nproto = \"tcp\"\n" + minimalRule,
                    Expected("validation.unknown_key", key: "defaults.proto"),
                    messageContains: [#"did you mean "protocol""#]),
        InvalidCase("rule udp_max_flows too large",
                    rule("web", "listen_port = 1\ntarget = \"h:1\"\nudp_max_flows = 16777217"),
                    Expected("validation.value_out_of_range", rule: "web", key: "udp_max_flows")),
        InvalidCase("rule udp_flow_idle_secs negative",
                    rule("web", "listen_port = 1\ntarget = \"h:1\"\nudp_flow_idle_secs = -1"),
                    Expected("validation.value_out_of_range", rule: "web", key: "udp_flow_idle_secs")),
        InvalidCase("rule udp_max_flows as a float",
                    rule("web", "listen_port = 1\ntarget = \"h:1\"\nudp_max_flows = 1.0"),
                    Expected("validation.wrong_type", rule: "web", key: "udp_max_flows")),
        InvalidCase("rule prefer_ipv6 as an integer",
                    rule("web", "listen_port = 1\ntarget = \"h:1\"\nprefer_ipv6 = 1"),
                    Expected("validation.wrong_type", rule: "web", key: "prefer_ipv6")),
    ]

    /// As Portunus: 0 for udp_max_flows or udp_flow_idle_secs means the default.
    @Test func zeroUDPCapsMeanTheDefaults() throws {
        let config = try ConfigLoader.parse("[defaults]\nudp_max_flows = 0\nudp_flow_idle_secs = 0\n"
            + rule("d", "protocol = \"udp\"\nlisten_port = 1\ntarget = \"127.0.0.1:1\"")
            + rule("r", "protocol = \"udp\"\nlisten_port = 2\ntarget = \"127.0.0.1:2\"\nudp_max_flows = 0\nudp_flow_idle_secs = 0"))
        for rule in config.rules {
            #expect(rule.udpMaxFlows == 1024 && rule.udpFlowIdle == .seconds(60))
        }
    }

    @Test("invalid [defaults] and overrides", arguments: cases)
    func invalid(_ testCase: InvalidCase) { check(testCase) }
}

@Suite("[stats]")
struct StatsSectionTests {
    static let cases: [InvalidCase] = [
        InvalidCase("refresh_ms 249", "[stats]\nrefresh_ms = 249\n" + minimalRule,
                    Expected("validation.refresh_ms_out_of_range", key: "stats.refresh_ms")),
        InvalidCase("refresh_ms 5001", "[stats]\nrefresh_ms = 5001\n" + minimalRule,
                    Expected("validation.refresh_ms_out_of_range", key: "stats.refresh_ms")),
        InvalidCase("refresh_ms 0, enabled explicitly", "[stats]\nenabled = true\nrefresh_ms = 0\n" + minimalRule,
                    Expected("validation.refresh_ms_out_of_range", key: "stats.refresh_ms")),
        InvalidCase("refresh_ms as a string", "[stats]\nrefresh_ms = \"1000\"\n" + minimalRule,
                    Expected("validation.wrong_type", key: "stats.refresh_ms")),
        InvalidCase("enabled as an integer", "[stats]\nenabled = 1\n" + minimalRule,
                    Expected("validation.wrong_type", key: "stats.enabled")),
        InvalidCase("empty socket_path", "[stats]\nsocket_path = \"\"\n" + minimalRule,
                    Expected("validation.value_out_of_range", key: "stats.socket_path")),
        InvalidCase("socket_path longer than sun_path",
                    "[stats]\nsocket_path = \"/\(String(repeating: "s", count: 107))\"\n" + minimalRule,
                    Expected("validation.value_out_of_range", key: "stats.socket_path"),
                    messageContains: ["108"]),
        InvalidCase("unknown key in [stats]", "[stats]\npath = \"/tmp/x\"\n" + minimalRule,
                    Expected("validation.unknown_key", key: "stats.path")),
    ]

    @Test("invalid [stats]", arguments: cases)
    func invalid(_ testCase: InvalidCase) { check(testCase) }

    @Test("refresh_ms bounds are inclusive", arguments: [250, 1000, 5000])
    func refreshBounds(_ ms: Int) throws {
        let config = try parseValid("[stats]\nrefresh_ms = \(ms)\n" + minimalRule)
        #expect(config.stats.refresh == .milliseconds(ms))
    }

    @Test func disabledStatsKeepOutOfRangeValues() throws {
        let config = try parseValid("[stats]\nenabled = false\nrefresh_ms = 10\nsocket_path = \"\"\n" + minimalRule)
        #expect(config.stats == StatsSettings(enabled: false, socketPath: "", refresh: .milliseconds(10)))
    }

    @Test func socketPathAtTheLimit() throws {
        let path = "/" + String(repeating: "s", count: 106)
        let config = try parseValid("[stats]\nsocket_path = \"\(path)\"\n" + minimalRule)
        #expect(config.stats.socketPath == path)
    }
}

@Suite("Unknown keys")
struct UnknownKeyTests {
    static let cases: [InvalidCase] = [
        InvalidCase("top-level key", "foo = 1\n" + minimalRule,
                    Expected("validation.unknown_key", key: "foo"), messageContains: ["top-level"]),
        InvalidCase("unknown top-level table", "[logging]\nlevel = 1\n" + minimalRule,
                    Expected("validation.unknown_key", key: "logging")),
        InvalidCase("rule key", rule("web", "listen_port = 1\ntarget = \"h:1\"\nweight = 1"),
                    Expected("validation.unknown_key", rule: "web", key: "weight"),
                    messageContains: [#""weight""#, "[[rule]]"]),
        InvalidCase("misspelt rule key with suggestion",
                    rule("web", "listen_port = 1\ntarget = \"h:1\"\nprefer_ipv4 = true"),
                    Expected("validation.unknown_key", rule: "web", key: "prefer_ipv4"),
                    messageContains: [#"did you mean "prefer_ipv6""#]),
        InvalidCase("subtable inside a rule", rule("web", "listen_port = 1\ntarget = \"h:1\"\n[rule.extra]\nx = 1"),
                    Expected("validation.unknown_key", rule: "web", key: "extra")),
        InvalidCase("several unknown keys, sorted",
                    rule("web", "listen_port = 1\ntarget = \"h:1\"\nzeta = 1\nalpha = 2"),
                    Expected("validation.unknown_key", rule: "web", key: "alpha"),
                    Expected("validation.unknown_key", rule: "web", key: "zeta")),
    ]

    @Test("unknown keys are named with their table", arguments: cases)
    func invalid(_ testCase: InvalidCase) { check(testCase) }
}
