import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Starts `arguments[0]` (an absolute path) with posix_spawn, not Foundation's
/// Process: standard input from /dev/null, standard output and error into
/// `outputPath`, no signal blocked and every one at its default (the test runner's
/// threads may block some). Process cannot be used for programs that fork a daemon
/// keeping inherited descriptors (tmux's server), nor reliably reaps them.
public func spawn(_ arguments: [String], outputPath: String) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var none = sigset_t(), all = sigset_t()
    sigemptyset(&none)
    sigfillset(&all)
    posix_spawnattr_setsigmask(&attributes, &none)
    posix_spawnattr_setsigdefault(&attributes, &all)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    var argv = arguments.map { strdup($0) } + [nil]
    defer { for arg in argv { free(arg) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, arguments[0], &actions, &attributes, &argv, environ)
    guard rc == 0 else { throw TestError("posix_spawn \(arguments[0]): errno \(rc)") }
    return pid
}

/// Runs `arguments` to completion, bounded by `timeoutSecs` (then killed): its exit
/// status and everything it wrote.
public func runCommand(_ arguments: [String], timeoutSecs: Double = 10) throws -> (exitCode: Int32, output: String) {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("pu-cmd-\(UUID().uuidString)").path
    defer { unlink(path) }
    let pid = try spawn(arguments, outputPath: path)
    let deadline = Date().addingTimeInterval(timeoutSecs)
    var status: Int32 = 0
    while waitpid(pid, &status, WNOHANG) == 0 {
        if Date() > deadline {
            kill(pid, SIGKILL)
            waitpid(pid, &status, 0)
            throw TestError("timed out after \(timeoutSecs) s: \(arguments)")
        }
        usleep(5_000)
    }
    let output = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    // WIFEXITED / WEXITSTATUS are macros: exit code in bits 8-15 when the low 7 are 0.
    return (status & 0x7F == 0 ? (status >> 8) & 0xFF : -1, output)
}

/// Runs `program` with `input` on its standard input: its exit status and standard
/// output (the independent oracles: python3's json, b3sum). Pipes are safe here, as
/// these programs fork nothing that outlives them.
public func runFiltering(_ program: [String], input: [UInt8]) throws -> (exitCode: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program[0])
    process.arguments = Array(program.dropFirst())
    let stdin = Pipe(), stdout = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    try process.run()
    // Written from another thread: a large input would otherwise fill the pipe while
    // the program waits for us to read its output.
    let writer = Thread {
        stdin.fileHandleForWriting.write(Data(input))
        try? stdin.fileHandleForWriting.close()
    }
    writer.start()
    let output = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, output)
}

/// `json.dumps(json.load(stdin), indent=2, sort_keys=True)` by Python: serde_json's
/// pretty layout, which `portunus stats --once` prints.
public func pythonPrettySortedJSON(_ text: String) throws -> String {
    let result = try runFiltering(["/usr/bin/python3", "-c",
                                   "import json,sys; sys.stdout.write(json.dumps(json.load(sys.stdin), indent=2, sort_keys=True, ensure_ascii=False))"],
                                  input: Array(text.utf8))
    guard result.exitCode == 0 else { throw TestError("python3 could not read the JSON: exit \(result.exitCode)") }
    return result.output
}
