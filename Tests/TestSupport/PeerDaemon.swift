import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A daemon from Debian's packages that a test runs beside the forwarder (HAProxy,
/// nginx): its files in a temp directory of its own, stdout and stderr in `output`
/// there, ready once it accepts on 127.0.0.1 and ::1, killed and its directory removed
/// on `stop()`.
public final class PeerDaemon: @unchecked Sendable {
    // @unchecked: used from the test's own thread only.
    public let directory: URL
    private let process = Process()
    private let name: String

    /// A fresh directory for `name`'s files (write its config there, then `start`).
    public init(name: String) throws {
        self.name = name
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("pu-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    deinit { stop() }

    /// Starts `executable` with `arguments` and waits (at most 10 s) until `port` accepts
    /// on both loopback addresses. `package` names the Debian package in the error when
    /// the program is missing.
    public func start(_ executable: String, _ arguments: [String], package: String, port: UInt16) throws {
        FileManager.default.createFile(atPath: directory.appendingPathComponent("output").path, contents: nil)
        let output = try FileHandle(forWritingTo: directory.appendingPathComponent("output"))
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw TestError("\(executable) is missing: install Debian's \(package) package (the README's test command does)")
        }
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        for host in ["127.0.0.1", "::1"] {
            while !Self.accepts(host, port) {
                if !process.isRunning || Date() > deadline { throw TestError("\(name) did not start: \(log)") }
                usleep(20_000)
            }
        }
    }

    public var log: String { (try? String(contentsOfFile: directory.appendingPathComponent("output").path, encoding: .utf8)) ?? "" }

    public func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning && Date() < deadline { usleep(10_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// A TCP connect that succeeds (and is closed at once, without a byte).
    private static func accepts(_ host: String, _ port: UInt16) -> Bool {
        let fd = socket(host.contains(":") ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { Glibc.close(fd) }
        return withSocketAddress(host, port) { Glibc.connect(fd, $0, $1) } == 0
    }
}
