import Glibc

/// Stops the benchmark with a message on stderr when a check fails. `precondition`
/// drops its message in release builds, which is how the benchmark plugin builds.
func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    guard !condition else { return }
    var line = "EngineRelayBenchmarks: \(message())\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    exit(1)
}
