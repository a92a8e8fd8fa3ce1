// Configuration load: `ConfigLoader.parse` of a generated 1,000-rule file, the size
// of a large deployment. Start-up and `--check` pay this once, so the figure is time
// per parse; mallocs are reported for information only (the parser builds a model of
// strings and arrays, allocation is its job).
//
// `toml-only-1000-rules` is our TOML parser alone on the same text (what
// `parse-1000-rules` pays before it validates anything).
//
// Peer: TOMLKit (toml++) alone turning the same text into a TOML table, the parser
// PortunusConfig used before it had its own; each ratio is against that.
import Benchmark
import PortunusConfig
import TOMLKit

// Benchmark names carry no spaces or slashes, or `thresholds check` cannot find the
// files `thresholds update` wrote (README, "Thresholds").
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal],
        timeUnits: .microseconds,
        warmupIterations: 2,
        maxDuration: .seconds(5),
        maxIterations: 200,
        thresholds: [
            // Two shared cores: p90 moves by a third between runs; twice as slow counts.
            .wallClock: BenchmarkThresholds(relative: [.p90: 100.0]),
            // Informational, but a jump (say a copy per rule) should still show:
            // +-10% of the recorded count.
            .mallocCountTotal: BenchmarkThresholds(relative: [.p90: 10.0]),
        ]
    )

    let text = GeneratedConfig.text(rules: GeneratedConfig.ruleCount)

    Benchmark("parse-1000-rules") { benchmark in
        do {
            let configuration = try ConfigLoader.parse(text, path: "generated.toml")
            if configuration.rules.count != GeneratedConfig.ruleCount { fatalError("parsed \(configuration.rules.count) rules") }
            blackHole(configuration)
        } catch {
            fatalError("the generated config does not validate (schema changed?): \(error)")
        }
    }

    Benchmark("toml-only-1000-rules") { benchmark in
        do {
            let table = try TOMLParser.parse(text)
            if table["rule"]?.array?.count != GeneratedConfig.ruleCount { fatalError("TOMLParser lost rules") }
            blackHole(table)
        } catch {
            fatalError("the generated config is not TOML: \(error)")
        }
    }

    Benchmark("peer-toml-only-1000-rules") { benchmark in
        do {
            let table = try TOMLKit.TOMLTable(string: text)  // both modules name a TOMLTable
            if table["rule"]?.array?.count != GeneratedConfig.ruleCount { fatalError("TOMLKit lost rules") }
            blackHole(table)
        } catch {
            fatalError("the generated config is not TOML: \(error)")
        }
    }
}
