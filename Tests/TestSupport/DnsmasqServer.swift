import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real DNS server for the tests: Debian's dnsmasq (package dnsmasq-base) on
/// 127.0.0.1 at an ephemeral UDP and TCP port, answering only from a hosts file of the
/// test's (`--no-resolv --no-hosts --addn-hosts`), with a fixed TTL. Every query is
/// logged, so a test can count what reached the server. Killed on `stop()`/deinit.
///
/// Started with posix_spawn, not Foundation's Process: dnsmasq closes every inherited
/// descriptor at start, which Foundation takes for the child's exit, and it then
/// blocks its run loop in wait4 until dnsmasq really exits, stalling every other
/// Process of the test run.
public final class DnsmasqServer: @unchecked Sendable {
    // @unchecked: used from the test's own thread only.
    public private(set) var port: UInt16 = 0
    private var pid: pid_t = 0
    private let directory: URL
    private var hostsPath: String { directory.appendingPathComponent("hosts").path }

    /// `hosts`: (address, name) pairs; `ttl`: the TTL of every answer, in seconds.
    public init(hosts: [(address: String, name: String)], ttl: Int) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("pu-dnsmasq-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // dnsmasq re-reads the hosts file after dropping to its own user when not told
        // otherwise: run it as the user running the tests.
        _ = chmod(directory.path, 0o755)
        try setHosts(hosts, reload: false)
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/dnsmasq") else {
            throw TestError("/usr/sbin/dnsmasq is missing: install Debian's dnsmasq-base (the README's test command does)")
        }
        // The port is free for UDP when picked; its TCP twin, or the UDP port itself a
        // moment later, may be taken by a test running alongside: then dnsmasq exits
        // at once and another port is tried.
        var failures: [String] = []
        for _ in 0..<5 {
            port = freeUDPPort()
            if try start(ttl: ttl) { return }
            failures.append("port \(port): \(exitStatus) \(log)")
        }
        throw TestError("dnsmasq did not start: \(failures.joined(separator: "; "))")
    }

    /// Starts dnsmasq on `port`; false if it exited before reading its hosts file.
    private func start(ttl: Int) throws -> Bool {
        let user = String(cString: getpwuid(geteuid())!.pointee.pw_name)
        let arguments = [
            "/usr/sbin/dnsmasq",
            "--keep-in-foreground", "--no-daemon", "--conf-file=/dev/null", "--pid-file=",
            "--port=\(port)", "--listen-address=127.0.0.1", "--bind-interfaces",
            "--no-resolv", "--no-hosts", "--addn-hosts=\(hostsPath)", "--local-ttl=\(ttl)",
            // Authoritative for the test names: a missing record is NXDOMAIN or NODATA,
            // not REFUSED (there is no upstream to ask).
            "--local=/\(DnsmasqServer.domain)/",
            "--user=\(user)", "--log-queries", "--log-facility=-",
        ]
        let logPath = directory.appendingPathComponent("log").path
        // spawn() starts it with no signal blocked: the test runner's threads may block
        // SIGHUP, which dnsmasq needs to re-read its hosts file.
        pid = try spawn(arguments, outputPath: logPath)
        let deadline = Date().addingTimeInterval(10)
        while !self.log.contains("read \(hostsPath)") {
            if !isRunning { return false }
            if Date() > deadline { throw TestError("dnsmasq did not start within 10 s: \(self.log)") }
            usleep(20_000)
        }
        return true
    }

    /// How the last dnsmasq ended, for errors.
    private var exitStatus = ""


    deinit { stop() }

    /// The domain test names live under.
    public static let domain = "portunus.test"

    /// What dnsmasq printed: start-up lines and one line per query.
    public var log: String { (try? String(contentsOfFile: directory.appendingPathComponent("log").path, encoding: .utf8)) ?? "" }

    /// Queries received for `name` (A and AAAA counted separately).
    public func queries(for name: String) -> Int {
        log.split(separator: "\n").filter { $0.contains("query[") && $0.contains(" \(name) from ") }.count
    }

    /// Rewrites the hosts file; with `reload`, SIGHUP makes dnsmasq read it again (and
    /// waits for it to say so).
    public func setHosts(_ hosts: [(address: String, name: String)], reload: Bool = true) throws {
        let text = hosts.map { "\($0.address) \($0.name)\n" }.joined()
        try text.write(toFile: hostsPath, atomically: true, encoding: .utf8)
        _ = chmod(hostsPath, 0o644)
        guard reload else { return }
        let before = log.components(separatedBy: "read \(hostsPath)").count
        kill(pid, SIGHUP)
        let deadline = Date().addingTimeInterval(5)
        while log.components(separatedBy: "read \(hostsPath)").count == before {
            if Date() > deadline { throw TestError("dnsmasq did not re-read its hosts file: \(log)") }
            usleep(20_000)
        }
    }

    /// SIGSTOP: queries reach the socket and are never answered (a blackholed resolver).
    public func pause() { kill(pid, SIGSTOP) }
    public func resume() { kill(pid, SIGCONT) }

    private var isRunning: Bool {
        guard pid > 0 else { return false }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid {
            exitStatus = "exit status \(status >> 8), signal \(status & 0x7f)"
            pid = 0
            return false
        }
        return true
    }

    /// Kills the server and removes its files.
    public func stop() {
        kill9()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Kills the server but keeps its log readable: its port then refuses (ICMP port
    /// unreachable), a resolver that is down.
    public func kill9() {
        guard pid > 0 else { return }
        kill(pid, SIGCONT)
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        pid = 0
    }
}

/// An ephemeral UDP port free on 127.0.0.1 right now.
public func freeUDPPort() -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    defer { Glibc.close(fd) }
    _ = withSocketAddress("127.0.0.1", 0) { bind(fd, $0, $1) }
    var storage = sockaddr_in()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return UInt16(bigEndian: storage.sin_port)
}
