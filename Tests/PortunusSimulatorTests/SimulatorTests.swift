import Foundation
import PortunusSimulator
import Testing
import TestSupport

/// The deterministic simulator: the real worker against a simulated kernel that
/// injects faults, with the invariants checked after every step.
@Suite struct SimulatorTests {
    /// Seeds in this debug process, where the engine's own assertions are armed too.
    @Test func seedsInProcessHoldEveryInvariant() {
        for seed in UInt64(1)...30 {
            let failure = Simulation.run(seed: seed)
            #expect(failure == nil, "seed \(seed): \(failure ?? "")")
            if failure != nil { break }
        }
    }

    /// The same seed replays exactly: same steps, same clock, same bytes.
    @Test func aSeedReplaysExactly() {
        for seed in [UInt64(7), 42, 1234] {
            #expect(Simulation.outcome(seed: seed) == Simulation.outcome(seed: seed))
        }
    }

    /// 10,000 seeds through the release build of `portunus-sim` (built by the test
    /// command before `swift test`), one process per core.
    @Test func tenThousandSeeds() throws {
        let binary = Repository.root.appendingPathComponent(".build/release/portunus-sim").path
        try #require(FileManager.default.isExecutableFile(atPath: binary),
                     "build it first: swift build -c release --product portunus-sim")
        let halves = try [1, 5001].map { from -> (process: Process, output: String) in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["--seeds", "5000", "--from", "\(from)"]
            let output = FileManager.default.temporaryDirectory.appendingPathComponent("pu-sim-\(from)-\(UUID().uuidString)").path
            FileManager.default.createFile(atPath: output, contents: nil)
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
            process.standardError = FileHandle.nullDevice
            try process.run()
            return (process, output)
        }
        let deadline = Date().addingTimeInterval(120)
        for (process, _) in halves {
            while process.isRunning && Date() < deadline { usleep(50_000) }
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
        }
        for (process, output) in halves {
            defer { try? FileManager.default.removeItem(atPath: output) }
            let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            let last = text.split(separator: "\n").last.map(String.init) ?? ""
            #expect(last == "5000 seeds, 0 failures", "\(text.suffix(2000))")
            #expect(process.terminationStatus == 0)
        }
    }
}
