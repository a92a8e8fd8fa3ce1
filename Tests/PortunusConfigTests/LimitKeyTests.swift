// The keys this project adds to the Portunus schema (max_connections,
// idle_timeout_secs) and the upper bounds every numeric key now has, so that no
// value --check accepts can overflow the runtime.
import PortunusConfig
import Testing

@Suite("Limits and additions")
struct LimitKeyTests {
    static let cases: [InvalidCase] = [
        InvalidCase("drain above a year", "[global]\nshutdown_drain_secs = 31536001\n" + minimalRule,
                    Expected("validation.value_out_of_range", key: "global.shutdown_drain_secs"),
                    messageContains: ["within 0...31536000"]),
        InvalidCase("drain at the TOML maximum", "[global]\nshutdown_drain_secs = 9223372036854775807\n" + minimalRule,
                    Expected("validation.value_out_of_range", key: "global.shutdown_drain_secs")),
        InvalidCase("max_connections 0", "[global]\nmax_connections = 0\n" + minimalRule,
                    Expected("validation.value_out_of_range", key: "global.max_connections")),
        InvalidCase("max_connections above 2^24", "[global]\nmax_connections = 16777217\n" + minimalRule,
                    Expected("validation.value_out_of_range", key: "global.max_connections")),
        InvalidCase("max_connections of the wrong type", "[global]\nmax_connections = \"lots\"\n" + minimalRule,
                    Expected("validation.wrong_type", key: "global.max_connections")),
        InvalidCase("negative idle timeout in [defaults]", "[defaults]\nidle_timeout_secs = -1\n" + minimalRule,
                    Expected("validation.value_out_of_range", key: "defaults.idle_timeout_secs")),
        InvalidCase("idle timeout above a year in a rule",
                    rule("ssh", "listen_port = 2222\ntarget = \"10.0.0.5:22\"\nidle_timeout_secs = 31536001"),
                    Expected("validation.value_out_of_range", rule: "ssh", key: "idle_timeout_secs")),
        InvalidCase("udp_flow_idle_secs above a year", "[defaults]\nudp_flow_idle_secs = 31536001\n" + minimalRule,
                    Expected("validation.value_out_of_range", key: "defaults.udp_flow_idle_secs")),
        InvalidCase("udp_max_flows above 2^24", "[defaults]\nudp_max_flows = 16777217\n" + minimalRule,
                    Expected("validation.value_out_of_range", key: "defaults.udp_max_flows")),
    ]

    @Test("invalid limits", arguments: cases)
    func invalid(_ testCase: InvalidCase) { check(testCase) }

    @Test func boundsAreAccepted() throws {
        let config = try parseValid("""
            [global]
            shutdown_drain_secs = 31536000
            max_connections = 16777216
            [defaults]
            idle_timeout_secs = 31536000
            udp_max_flows = 16777216
            udp_flow_idle_secs = 31536000
            """ + "\n" + minimalRule)
        #expect(config.global.shutdownDrain == .seconds(Limits.maxSeconds))
        #expect(config.global.maxConnections == Limits.maxConnections)
        #expect(config.rules[0].idleTimeout == .seconds(Limits.maxSeconds))
    }

    @Test func maxConnectionsIsAbsentByDefault() throws {
        #expect(try parseValid(minimalRule).global.maxConnections == nil)
    }

    /// A rule inherits [defaults].idle_timeout_secs, may set its own, and 0 turns it off
    /// (Portunus's behaviour: no idle timeout).
    @Test func idleTimeoutInheritsAndZeroMeansNever() throws {
        let config = try parseValid("""
            [defaults]
            idle_timeout_secs = 300
            """ + "\n"
            + rule("inherits", "listen_port = 2000\ntarget = \"10.0.0.5:22\"")
            + rule("own", "listen_port = 2001\ntarget = \"10.0.0.5:22\"\nidle_timeout_secs = 5")
            + rule("never", "listen_port = 2002\ntarget = \"10.0.0.5:22\"\nidle_timeout_secs = 0"))
        #expect(config.rules.map(\.idleTimeout) == [.seconds(300), .seconds(5), nil])
        #expect(try parseValid(minimalRule).rules[0].idleTimeout == nil)
    }
}
