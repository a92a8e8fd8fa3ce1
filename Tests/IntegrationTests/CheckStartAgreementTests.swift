import Foundation
import Glibc
import Testing
import TestSupport

/// The promise of `--check`: a file it accepts starts and stops cleanly, and a file it
/// refuses is refused by start-up too, with the same error. Checked over generated
/// files that take every key to its extremes (the bounds, one past them, absent),
/// from a fixed seed so that a failing file replays.
@Suite(.serialized) struct CheckStartAgreementTests {
    /// One key's values: `good` ones start (nil: the key is absent), `bad` ones are
    /// refused (out of range, wrong, or not supported yet).
    struct Choice {
        let good: [String?]
        let bad: [String]
    }

    /// Picks a good value, or a bad one when `bad` is set.
    static func pick(_ random: inout SeededRandom, _ choice: Choice, bad: Bool) -> String? {
        if bad && !choice.bad.isEmpty { return choice.bad[random.next(in: 0...(choice.bad.count - 1))] }
        return choice.good[random.next(in: 0...(choice.good.count - 1))]
    }

    /// A listen port nobody holds, from a band below the ephemeral range.
    static func freeListenPort(_ random: inout SeededRandom, taken: inout Set<UInt16>, width: UInt16 = 1) -> UInt16 {
        while true {
            let port = UInt16(random.next(in: 23000...23900))
            let ports = (0..<width).map { port + $0 }
            if ports.allSatisfy({ !taken.contains($0) && canBind(port: $0) }) { taken.formUnion(ports); return port }
        }
    }

    static let global: [(String, Choice)] = [
        ("label", Choice(good: [nil, "\"\"", "\"edge-1\"", "\"\(String(repeating: "ü", count: 300))\""], bad: ["3"])),
        ("log_level", Choice(good: [nil, "\"error\"", "\"trace\""], bad: ["\"loud\""])),
        ("log_format", Choice(good: [nil, "\"json\"", "\"pretty\""], bad: ["\"xml\""])),
        ("shutdown_drain_secs", Choice(good: [nil, "0", "31536000"], bad: ["31536001", "-1", "9223372036854775807"])),
        ("max_connections", Choice(good: [nil, "1", "16777216"], bad: ["0", "16777217"])),
    ]
    static let defaults: [(String, Choice)] = [
        ("udp_max_flows", Choice(good: [nil, "0", "1", "16777216"], bad: ["-1", "16777217"])),
        ("udp_flow_idle_secs", Choice(good: [nil, "0", "1", "31536000"], bad: ["-1"])),
        ("prefer_ipv6", Choice(good: [nil, "true", "false"], bad: ["1"])),
        ("idle_timeout_secs", Choice(good: [nil, "0", "1", "31536000"], bad: ["31536001", "-1"])),
        // In [defaults] they apply to the TCP rules only, so any rule protocol stays valid.
        ("accept_proxy", Choice(good: [nil, "\"any\"", "\"v1\"", "\"v2\""], bad: ["\"v3\"", "true"])),
        ("accept_proxy_timeout_secs", Choice(good: [nil, "1", "3600"], bad: ["0", "3601"])),
    ]
    static let stats: [(String, Choice)] = [
        ("enabled", Choice(good: [nil, "false", "true"], bad: [])),
        ("refresh_ms", Choice(good: [nil, "250", "5000"], bad: ["249", "5001"])),
    ]
    static let ruleKeys: [(String, Choice)] = [
        ("protocol", Choice(good: [nil, "\"tcp\"", "\"udp\""], bad: ["\"sctp\""])),
        ("idle_timeout_secs", Choice(good: [nil, "0", "5", "31536000"], bad: ["31536001"])),
    ]
    static let target: [(String, Choice)] = [
        ("host", Choice(good: ["\"127.0.0.1\"", "\"::1\"", "\"0.0.0.0\""], bad: ["\"backend.internal\"", "\"::1:80\""])),
        ("port", Choice(good: ["9", "1", "65535"], bad: ["0", "65536"])),
        ("priority", Choice(good: [nil, "0", "9223372036854775807"], bad: ["-1"])),
        ("proxy_protocol", Choice(good: [nil, "\"v1\"", "\"v2\""], bad: ["\"v3\""])),
    ]

    /// A file whose every key is at a good extreme (even seeds), or with exactly one key
    /// at a bad value, or one rule too wide for the open-file limit (odd seeds).
    static func generate(seed: UInt64) -> String {
        var r = SeededRandom(seed: seed)
        let rules = r.next(in: 1...3)
        let slots = global.count + defaults.count + stats.count + rules * (ruleKeys.count + target.count + 1)
        let badSlot = seed % 2 == 1 ? r.next(in: 0...(slots - 1)) : -1
        var slot = 0
        func value(_ choice: Choice) -> String? {
            defer { slot += 1 }
            return pick(&r, choice, bad: slot == badSlot)
        }
        var taken: Set<UInt16> = []
        var lines: [String] = ["[global]"]
        for (key, choice) in global { if let v = value(choice) { lines.append("\(key) = \(v)") } }
        lines.append("[defaults]")
        for (key, choice) in defaults { if let v = value(choice) { lines.append("\(key) = \(v)") } }
        lines.append("[stats]")
        for (key, choice) in stats { if let v = value(choice) { lines.append("\(key) = \(v)") } }
        lines.append("socket_path = \"/tmp/pu-agree-\(seed).sock\"")
        for index in 0..<rules {
            lines.append("[[rule]]")
            lines.append("name = \"r\(index)\"")
            for (key, choice) in ruleKeys { if let v = value(choice) { lines.append("\(key) = \(v)") } }
            // The listen side: one port (at an extreme when it is free), 40 ports, or all
            // 65,535 (the bad value: more listen sockets than the fd limit allows).
            let shape = value(Choice(good: ["one", "extreme", "forty"], bad: ["all"]))!
            switch shape {
            case "all":
                lines.append("listen_ports = \"1-65535\"")
                lines.append("target = \"127.0.0.1:1-65535\"")
                slot += target.count
                continue
            case "forty":
                let low = freeListenPort(&r, taken: &taken, width: 40)
                lines.append("listen_ports = \"\(low)-\(low + 39)\"")
                lines.append("target = \"127.0.0.1:\(low + 2000)-\(low + 2039)\"")
                slot += target.count
                continue
            case "extreme" where getuid() == 0 && !taken.contains(1) && canBind(port: 1):
                taken.insert(1)
                lines.append("listen_port = 1")
            case "extreme" where !taken.contains(65535) && canBind(port: 65535):
                taken.insert(65535)
                lines.append("listen_port = 65535")
            default:
                lines.append("listen_port = \(freeListenPort(&r, taken: &taken))")
            }
            let fields = target.compactMap { key, choice in value(choice).map { "\(key) = \($0)" } }
            lines.append("targets = [ { \(fields.joined(separator: ", ")) } ]")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Both runs get the same open-file limit (this machine's), so that a rule over all
    /// 65,535 ports is refused by both on any host.
    static let fdLimit = ["/usr/bin/prlimit", "--nofile=20000:20000", "--"]

    /// Starts the binary on `path`: whether it reached "started", then (after SIGTERM)
    /// its exit code and stderr.
    static func start(_ path: String) throws -> (started: Bool, exitCode: Int32, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: fdLimit[0])
        process.arguments = Array(fdLimit.dropFirst()) + [Repository.binary, "--config", path, "--workers", "2", "--log-format", "pretty", "--log-level", "info"]
        let errPath = path + ".err"
        FileManager.default.createFile(atPath: errPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: errPath) }
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(15)
        var started = false
        while process.isRunning && Date() < deadline && !started {
            usleep(10_000)
            started = ((try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "").contains(" INFO started ")
        }
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        let stopDeadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < stopDeadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return (started, process.terminationStatus, (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }

    /// The `error[code]` of each line of `text`.
    static func errorCodes(_ text: String) -> [String] {
        text.split(separator: "\n").compactMap { line in
            guard let open = line.range(of: "error["), let close = line[open.upperBound...].firstIndex(of: "]") else { return nil }
            return String(line[open.upperBound..<close])
        }
    }

    @Test(arguments: 1...32)
    func checkAndStartUpAgree(seed: Int) throws {
        let text = Self.generate(seed: UInt64(seed))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pu-agree-\(seed)-\(UUID().uuidString).toml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let check = try runBinary(["--check", "--config", path, "--workers", "2"], wrapper: Self.fdLimit)
        let run = try Self.start(path)
        if check.exitCode == 0 {
            #expect(run.started, "--check accepted this file but start-up did not start:\n\(text)\n\(run.stderr)")
            #expect(run.exitCode == 0, "--check accepted this file but it did not stop cleanly:\n\(text)\n\(run.stderr)")
        } else {
            #expect(check.exitCode == 2, "\(check.stderr)")
            #expect(!run.started, "--check refused this file but start-up ran it:\n\(text)\n\(check.stderr)")
            #expect(run.exitCode == 2, "start-up refused it differently:\n\(run.stderr)")
            #expect(Self.errorCodes(run.stderr) == Self.errorCodes(check.stderr))
        }
    }

    /// The generator reaches both outcomes, or the agreement above proves little.
    @Test func generatedFilesIncludeValidAndInvalidOnes() throws {
        var outcomes: Set<Int32> = []
        for seed in 1...32 {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("pu-agree-g\(seed)-\(UUID().uuidString).toml").path
            try Self.generate(seed: UInt64(seed)).write(toFile: path, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: path) }
            outcomes.insert(try runBinary(["--check", "--config", path, "--workers", "2"], wrapper: Self.fdLimit).exitCode)
        }
        #expect(outcomes == [0, 2])
    }
}
