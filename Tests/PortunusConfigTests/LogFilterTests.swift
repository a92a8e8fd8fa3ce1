import PortunusConfig
import Testing

/// `log_level` as tracing's EnvFilter reads it (the filters Portunus files carry).
@Suite struct LogFilterTests {
    /// (filter, target, the level that target logs at; nil: nothing).
    static let cases: [(String, String, LogLevel?)] = [
        ("info", "portunus::rule", .info),
        ("INFO", "portunus", .info),
        ("warning", "portunus::stats", .warn),
        ("portunus=debug,info", "portunus::rule", .debug),
        ("portunus=debug,info", "tokio", .info),
        ("warn,portunus::rule=debug", "portunus::rule", .debug),
        ("warn,portunus::rule=debug", "portunus::rule::udp", .debug),
        ("warn,portunus::rule=debug", "portunus::ruler", .warn),
        ("warn,portunus::rule=debug", "portunus::standalone", .warn),
        ("portunus=trace,portunus::stats=off", "portunus::stats", nil),
        ("portunus=trace,portunus::stats=off", "portunus::standalone", .trace),
        ("portunus", "portunus::shutdown", .trace),
        ("portunus=info", "hyper", nil),
        (" error , portunus::rule = info ", "portunus::rule", .info),
        ("off", "portunus", nil),
        // EnvFilter skips empty directives, lets a later bare level win, and logs
        // errors when given nothing.
        ("info,", "portunus", .info),
        (",", "portunus", .error),
        ("info,debug", "portunus::rule", .debug),
        ("", "portunus", .error),
    ]

    @Test func eachTargetGetsTheLevelOfItsLongestMatchingDirective() throws {
        for (text, target, level) in Self.cases {
            let filter = try #require(LogFilter(text), "\(text) is a filter")
            #expect(filter.level(for: target) == level, "\(text) for \(target)")
        }
    }

    @Test func theMostVerboseLevelAnyTargetUses() throws {
        #expect(LogFilter("warn,portunus::rule=debug")?.mostVerbose == .debug)
        #expect(LogFilter("off")?.mostVerbose == nil)
        #expect(LogFilter("error")?.mostVerbose == .error)
    }

    @Test(arguments: ["=info", "portunus=", "portunus=loud", "a b=info", "[span]", "x{a=1}=info",
                      "portunus:rule=debug", "::rule=debug", "portunus::=info"])
    func textThatIsNoFilterIsRefused(_ text: String) {
        #expect(LogFilter(text) == nil, "\(text)")
    }
}
