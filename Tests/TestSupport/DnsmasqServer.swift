import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real DNS server for the tests: Debian's dnsmasq (package dnsmasq-base) on
/// 127.0.0.1 at an ephemeral UDP and TCP port, answering only from a hosts file of the
/// test's (`--no-resolv --no-hosts --addn-hosts`), with a fixed TTL. Every query is
/// logged, so a test can count what reached the server. Killed on `stop()`/deinit.
public final class DnsmasqServer: @unchecked Sendable {
    // @unchecked: used from the test's own thread only.
    public private(set) var port: UInt16 = 0
    private let process = Process()
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
        let user = String(cString: getpwuid(geteuid())!.pointee.pw_name)
        port = freeUDPPort()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/dnsmasq")
        process.arguments = [
            "--keep-in-foreground", "--no-daemon", "--conf-file=/dev/null", "--pid-file=",
            "--port=\(port)", "--listen-address=127.0.0.1", "--bind-interfaces",
            "--no-resolv", "--no-hosts", "--addn-hosts=\(hostsPath)", "--local-ttl=\(ttl)",
            // Authoritative for the test names: a missing record is NXDOMAIN or NODATA,
            // not REFUSED (there is no upstream to ask).
            "--local=/\(DnsmasqServer.domain)/",
            "--user=\(user)", "--log-queries", "--log-facility=-",
        ]
        FileManager.default.createFile(atPath: directory.appendingPathComponent("log").path, contents: nil)
        let log = try FileHandle(forWritingTo: directory.appendingPathComponent("log"))
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while !self.log.contains("read \(hostsPath)") {
            if !process.isRunning || Date() > deadline { throw TestError("dnsmasq did not start: \(self.log)") }
            usleep(20_000)
        }
    }

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
        kill(process.processIdentifier, SIGHUP)
        let deadline = Date().addingTimeInterval(5)
        while log.components(separatedBy: "read \(hostsPath)").count == before {
            if Date() > deadline { throw TestError("dnsmasq did not re-read its hosts file: \(log)") }
            usleep(20_000)
        }
    }

    /// SIGSTOP: queries reach the socket and are never answered (a blackholed resolver).
    public func pause() { kill(process.processIdentifier, SIGSTOP) }
    public func resume() { kill(process.processIdentifier, SIGCONT) }

    /// Kills the server and removes its files.
    public func stop() {
        kill9()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Kills the server but keeps its log readable: its port then refuses (ICMP port
    /// unreachable), a resolver that is down.
    public func kill9() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGCONT)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
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
