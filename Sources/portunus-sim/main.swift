import Foundation
import PortunusSimulator

// portunus-sim --seeds N [--from S]: runs seeds S ..< S+N of the deterministic
// simulator; prints each failing seed with its first violated invariant and how to
// replay it, then "N seeds, F failures" as the last line; exits 1 when F > 0.
var seeds = 1000
var from: UInt64 = 1
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.popFirst() {
    switch flag {
    case "--seeds": seeds = Int(arguments.popFirst() ?? "") ?? -1
    case "--from": from = UInt64(arguments.popFirst() ?? "") ?? 0
    default: seeds = -1
    }
}
guard seeds >= 0 else {
    FileHandle.standardError.write(Data("usage: portunus-sim [--seeds N] [--from S]\n".utf8))
    exit(2)
}
var failures = 0
var firstFailure: UInt64?
for seed in from..<(from + UInt64(seeds)) {
    if let failure = Simulation.run(seed: seed) {
        failures += 1
        if firstFailure == nil { firstFailure = seed }
        print("seed \(seed) failed: \(failure)")
        print("  replay: swift run -c release portunus-sim --seeds 1 --from \(seed)")
    }
}
if let firstFailure { print("first failing seed: \(firstFailure)") }
print("\(seeds) seeds, \(failures) failures")
exit(failures > 0 ? 1 : 0)
