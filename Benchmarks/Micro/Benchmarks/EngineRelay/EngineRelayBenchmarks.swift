// The engine end to end, in one process: a client opens sequential connections to
// 127.0.0.1, each sends a payload, half-closes and reads it back from an echo thread,
// either through one engine worker or straight to the echo thread (the peer of the
// same size).
//  - 16 KiB, the short exchange: relay modes buffers, splice and auto, and buffers with
//    a PROXY v2 prelude per connection. 16 KiB never fills a 64 KiB buffer, so auto
//    stays on buffers here: its row is the mode's bookkeeping on short exchanges.
//  - 2 MiB, a bulk stream: buffers, splice, and auto, which moves a half to splice
//    after 16 full buffers in a row (about half of the halves switched in a trial run;
//    teardown requires that some did), so the switch is measured too.
//
// One connection per iteration, so every metric is per connection: wall clock of the
// whole exchange and mallocs in the whole process during it (the interposer counts
// every thread: the client, the echo thread and the engine's worker). Client and echo
// thread allocate nothing per connection, so what an engine row shows beyond its peer
// row is the engine's own.
//
// Steady state: the fixture (engine start, buffer ring, slab) is built in the setup
// hook and connections run as warm-up (200 short, 20 bulk) before anything is measured.
import Benchmark
import PortunusEngine

// Benchmark names carry no spaces or slashes, or `thresholds check` cannot find the
// files `thresholds update` wrote (README, "Thresholds").
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal],
        timeUnits: .microseconds,
        warmupIterations: 200,
        maxDuration: .seconds(3),
        maxIterations: 3_000,
        thresholds: [
            // Loopback round trips on two shared cores: p90 doubles when the machine is
            // busy (splice most), so only twice as slow counts.
            .wallClock: BenchmarkThresholds(relative: [.p90: 100.0]),
            // The steady state allocates nothing: no malloc at all is tolerated.
            .mallocCountTotal: BenchmarkThresholds(absolute: [.p90: 0]),
        ]
    )

    let short = 16 * 1024
    relayBenchmark("peer-relay-16KiB-direct", relay: nil, payloadBytes: short)
    relayBenchmark("relay-16KiB-engine-buffers", relay: .buffers, payloadBytes: short)
    relayBenchmark("relay-16KiB-engine-splice", relay: .splice, payloadBytes: short)
    relayBenchmark("relay-16KiB-engine-auto", relay: .auto, payloadBytes: short)
    relayBenchmark("relay-16KiB-engine-buffers-proxy-v2", relay: .buffers, proxyV2: true, payloadBytes: short)

    var bulk = Benchmark.defaultConfiguration
    bulk.warmupIterations = 20
    bulk.maxIterations = 500
    let bulkBytes = 2 * 1024 * 1024
    relayBenchmark("peer-relay-2MiB-direct", relay: nil, payloadBytes: bulkBytes, configuration: bulk)
    relayBenchmark("relay-2MiB-engine-buffers", relay: .buffers, payloadBytes: bulkBytes, configuration: bulk)
    relayBenchmark("relay-2MiB-engine-splice", relay: .splice, payloadBytes: bulkBytes, configuration: bulk)
    relayBenchmark("relay-2MiB-engine-auto", relay: .auto, payloadBytes: bulkBytes, configuration: bulk,
                   expectSplice: true)
}

/// Registers one relay benchmark; its fixture lives from setup to teardown.
private func relayBenchmark(
    _ name: String, relay: RelayMode?, proxyV2: Bool = false, payloadBytes: Int,
    configuration: Benchmark.Configuration = Benchmark.defaultConfiguration, expectSplice: Bool = false
) {
    let holder = FixtureHolder()
    Benchmark(name, configuration: configuration) { benchmark in
        guard let fixture = holder.fixture else { return require(false, "\(name): no fixture") }
        benchmark.startMeasurement()
        let ok = fixture.connection()
        benchmark.stopMeasurement()
        require(ok, "\(name): round trip failed")
        holder.connections += 1
    } setup: {
        holder.fixture = try RelayFixture(relay: relay, proxyV2: proxyV2, payloadBytes: payloadBytes)
        holder.connections = 0
    } teardown: {
        let counters = holder.fixture?.stop(expectedConnections: holder.connections)
        holder.fixture = nil
        // auto must really have moved halves to splice, or its row measures buffers.
        require(!expectSplice || (counters?.splicedHalves ?? 0) > 0, "\(name): no half moved to splice")
    }
}

/// The benchmark runner calls setup, every iteration and teardown one after the
/// other, so plain stored properties are enough.
private final class FixtureHolder {
    var fixture: RelayFixture?
    var connections = 0
}
