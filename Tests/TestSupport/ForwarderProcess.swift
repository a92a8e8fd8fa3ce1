import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Paths of the repository and of the binary built by `swift build`.
public enum Repository {
    /// The package root, found from this file's path.
    public static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        }
        fatalError("Package.swift not found above \(#filePath)")
    }()

    /// `.build/debug/portunus-uring` (or `PORTUNUS_BINARY`): `swift build` must run before `swift test`.
    public static var binary: String {
        if let path = ProcessInfo.processInfo.environment["PORTUNUS_BINARY"] { return path }
        return root.appendingPathComponent(".build/debug/portunus-uring").path
    }

    /// The sample config files the tests carry (`Tests/Fixtures`).
    public static var fixtures: URL {
        root.appendingPathComponent("Tests/Fixtures")
    }
}

/// The outcome of a finished process.
public struct ProcessResult: Sendable {
    public let exitCode: Int32
    public let stdout: String
    public let stderr: String
}

/// Runs the binary to completion with `arguments`, bounded by `timeoutSecs`.
public func runBinary(_ arguments: [String], timeoutSecs: Double = 30, wrapper: [String] = []) throws -> ProcessResult {
    let process = Process()
    let all = wrapper + [Repository.binary] + arguments
    process.executableURL = URL(fileURLWithPath: all[0])
    process.arguments = Array(all.dropFirst())
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pu-run-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let out = dir.appendingPathComponent("out"), err = dir.appendingPathComponent("err")
    FileManager.default.createFile(atPath: out.path, contents: nil)
    FileManager.default.createFile(atPath: err.path, contents: nil)
    process.standardOutput = try FileHandle(forWritingTo: out)
    process.standardError = try FileHandle(forWritingTo: err)
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let deadline = Date().addingTimeInterval(timeoutSecs)
    while process.isRunning && Date() < deadline { usleep(10_000) }
    if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit(); throw TestError("timed out: \(all)") }
    process.waitUntilExit()
    return ProcessResult(exitCode: process.terminationStatus,
                         stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
                         stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
}

/// A running forwarder process with its own config file; stderr goes to a file that
/// `stop()` returns. Always killed on deinit.
public final class ForwarderProcess: @unchecked Sendable {
    // @unchecked: used from the test's own thread only.
    public let process = Process()
    public let directory: URL
    private var finished: ProcessResult?

    public var pid: Int32 { process.processIdentifier }
    /// Where the forwarder serves its stats socket unless the test passed `--stats-socket` or `--no-stats`.
    public var statsSocketPath: String { directory.appendingPathComponent("stats.sock").path }

    /// Writes `config` to a temp file, starts the binary, and waits (at most 10 s) for
    /// its "started" log line, which it prints once every listener is bound and every
    /// worker's ring is up. No probe connection is made, so counters start at zero.
    /// `wrapper` runs in front of the binary (e.g. `["prlimit", "--nofile=4096", "--"]`).
    /// `environment` is added to the test's own, less `NOTIFY_SOCKET` (a test run under
    /// systemd must not have its forwarders report to the test's service manager).
    /// `waitForStart: false` returns as soon as the process runs, for a test that watches
    /// start-up itself.
    public init(config: String, arguments: [String] = [], wrapper: [String] = [],
                environment: [String: String] = [:], waitForStart: Bool = true) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("pu-fwd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let configPath = directory.appendingPathComponent("portunus.toml")
        try config.write(to: configPath, atomically: true, encoding: .utf8)
        // Each forwarder serves its stats socket in its own directory (not the shared
        // default path), unless the test chooses.
        let stats = arguments.contains("--no-stats") || arguments.contains("--stats-socket") ? [] : ["--stats-socket", directory.appendingPathComponent("stats.sock").path]
        let command = wrapper + [Repository.binary, "--config", configPath.path, "--log-format", "pretty", "--log-level", "info"] + stats + arguments
        process.executableURL = URL(fileURLWithPath: command[0].hasPrefix("/") ? command[0] : "/usr/bin/\(command[0])")
        process.arguments = Array(command.dropFirst())
        FileManager.default.createFile(atPath: directory.appendingPathComponent("stderr").path, contents: nil)
        FileManager.default.createFile(atPath: directory.appendingPathComponent("stdout").path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: directory.appendingPathComponent("stderr"))
        process.standardOutput = try FileHandle(forWritingTo: directory.appendingPathComponent("stdout"))
        process.standardInput = FileHandle.nullDevice
        var inherited = ProcessInfo.processInfo.environment
        inherited["NOTIFY_SOCKET"] = nil
        process.environment = inherited.merging(environment) { $1 }
        try process.run()
        guard waitForStart else { return }
        let deadline = Date().addingTimeInterval(10)
        // The start-up line, in the pretty form or the JSON one (a test may ask for JSON).
        while !stderrText.contains(" INFO started ") && !stderrText.contains("\"event\":\"standalone.started\"") {
            if !process.isRunning { throw TestError("forwarder exited early: \(stderrText)") }
            if Date() > deadline { throw TestError("forwarder did not start within 10 s: \(stderrText)") }
            usleep(10_000)
        }
    }

    deinit {
        if process.isRunning { kill(pid, SIGKILL); process.waitUntilExit() }
        try? FileManager.default.removeItem(at: directory)
    }

    public var stderrText: String {
        (try? String(contentsOf: directory.appendingPathComponent("stderr"), encoding: .utf8)) ?? ""
    }

    /// Sends SIGTERM and waits (at most `timeoutSecs`) for the exit.
    @discardableResult
    public func stop(timeoutSecs: Double = 20) -> ProcessResult {
        if let finished { return finished }
        if process.isRunning { kill(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(timeoutSecs)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
        let result = ProcessResult(exitCode: process.terminationStatus, stdout: "", stderr: stderrText)
        finished = result
        return result
    }

    /// The config file the forwarder was started with (a reload re-reads it).
    public var configPath: URL { directory.appendingPathComponent("portunus.toml") }

    /// Writes `config` over the forwarder's file, sends SIGHUP, and waits (at most 10 s)
    /// for the reload's outcome line: true when it was applied, false when it failed.
    @discardableResult
    public func reload(config: String) throws -> Bool {
        func count(_ needle: String) -> Int { stderrText.components(separatedBy: needle).count - 1 }
        let applied = count("event=standalone.reload "), failed = count("event=standalone.reload_failed ")
        try config.write(to: configPath, atomically: true, encoding: .utf8)
        kill(pid, SIGHUP)
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if count("event=standalone.reload ") > applied { return true }
            if count("event=standalone.reload_failed ") > failed { return false }
            if !process.isRunning { throw TestError("forwarder exited during a reload: \(stderrText.suffix(2000))") }
            usleep(2_000)
        }
        throw TestError("no reload outcome within 10 s: \(stderrText.suffix(2000))")
    }

    /// Threads of the process.
    public var threadCount: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task").count) ?? -1
    }

    /// Resident memory in KiB (VmRSS).
    public var residentKiB: Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? -1
    }

    /// Entries in /proc/PID/fd.
    public var openFileCount: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    /// What each of the process's fds points at ("socket:[...]", "pipe:[...]", paths).
    public var fileDescriptorTargets: [String] {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        return fds.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)") }
    }

    /// Threads of the process named iou-wrk-* (io_uring's io-wq kernel workers).
    public var ioWorkerThreadCount: Int {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.filter { task in
            let comm = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/comm", encoding: .utf8)) ?? ""
            return comm.hasPrefix("iou-wrk")
        }.count
    }
}

/// A one-rule TCP config.
public func tcpRuleConfig(name: String = "fwd", listenPort: UInt16, target: String, extra: String = "") -> String {
    """
    [global]
    shutdown_drain_secs = 2
    \(extra)
    [[rule]]
    name = "\(name)"
    protocol = "tcp"
    listen_port = \(listenPort)
    target = "\(target)"

    """
}

/// A TCP config with one rule per entry, in order, and the given drain budget.
public func tcpRulesConfig(_ rules: [(name: String, listenPort: UInt16, target: String)], drainSecs: Int = 0) -> String {
    var text = "[global]\nshutdown_drain_secs = \(drainSecs)\n"
    for rule in rules {
        text += "[[rule]]\nname = \"\(rule.name)\"\nprotocol = \"tcp\"\nlisten_port = \(rule.listenPort)\ntarget = \"\(rule.target)\"\n"
    }
    return text
}
