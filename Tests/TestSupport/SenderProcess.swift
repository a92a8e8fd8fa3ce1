import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real load balancer in front, from Debian's packages, that prepends a PROXY header
/// to every connection it forwards (an independent sender for `accept_proxy`): HAProxy
/// (`server ... send-proxy` or `send-proxy-v2`, the v2 one with a unique id and a
/// CRC32C, `proxy-v2-options unique-id,crc32c`) or nginx (`proxy_protocol on`, v1).
/// Listens on 127.0.0.1 and ::1 at one ephemeral port and forwards to 127.0.0.1:`target`;
/// everything it writes stays in its own temp directory; killed on `stop()`/deinit.
public final class SenderProcess: @unchecked Sendable {
    // @unchecked: used from the test's own thread only.
    public enum Kind: String, Sendable, CaseIterable { case haproxyV1, haproxyV2, nginxV1 }

    public let kind: Kind
    public let port: UInt16
    private let process = Process()
    private let directory: URL

    /// The unique id HAProxy's v2 header carries for a client at `host`:`port` (its
    /// `unique-id-format` below), as the receiver's `unique_id` shows it (hex).
    public static func uniqueIDHex(clientHost host: String, clientPort port: UInt16) -> String {
        Array("lb-\(host)-\(port)".utf8).map { String(format: "%02X", $0) }.joined()
    }

    public init(_ kind: Kind, target: UInt16) throws {
        self.kind = kind
        port = freePort()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("pu-sender-\(kind.rawValue)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let dir = directory.path
        switch kind {
        case .nginxV1:
            // Debian builds the stream module as a dynamic one (libnginx-mod-stream, which
            // the nginx package depends on).
            let conf = """
            load_module /usr/lib/nginx/modules/ngx_stream_module.so;
            worker_processes 1;
            pid \(dir)/nginx.pid;
            events { worker_connections 256; }
            stream {
                server {
                    listen 127.0.0.1:\(port);
                    listen [::1]:\(port);
                    proxy_pass 127.0.0.1:\(target);
                    proxy_protocol on;
                }
            }
            """
            try conf.write(toFile: "\(dir)/nginx.conf", atomically: true, encoding: .utf8)
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/nginx")
            process.arguments = ["-p", "\(dir)/", "-e", "\(dir)/error.log", "-c", "\(dir)/nginx.conf", "-g", "daemon off;"]
        case .haproxyV1, .haproxyV2:
            let send = kind == .haproxyV1 ? "send-proxy" : "send-proxy-v2 proxy-v2-options unique-id,crc32c"
            let conf = """
            global
                maxconn 256
            defaults
                mode tcp
                timeout connect 5s
                timeout client 10s
                timeout server 10s
            frontend lb
                bind 127.0.0.1:\(port)
                bind [::1]:\(port)
                unique-id-format lb-%ci-%cp
                default_backend portunus
            backend portunus
                server p 127.0.0.1:\(target) \(send)
            """
            try (conf + "\n").write(toFile: "\(dir)/haproxy.cfg", atomically: true, encoding: .utf8)
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/haproxy")
            process.arguments = ["-f", "\(dir)/haproxy.cfg", "-db"]
        }
        FileManager.default.createFile(atPath: "\(dir)/output", contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(dir)/output"))
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        guard FileManager.default.isExecutableFile(atPath: process.executableURL!.path) else {
            throw TestError("\(process.executableURL!.path) is missing: install Debian's \(kind == .nginxV1 ? "nginx" : "haproxy") package (the README's test command does)")
        }
        try process.run()
        // Ready when both addresses accept: a bare connect that is closed at once (the
        // forwarder behind rejects it for want of a header; harmless).
        let deadline = Date().addingTimeInterval(10)
        for host in ["127.0.0.1", "::1"] {
            while !canConnect(host, port) {
                if !process.isRunning || Date() > deadline { throw TestError("\(kind) did not start: \(log)") }
                usleep(20_000)
            }
        }
    }

    deinit { stop() }

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

    /// A TCP connect that is refused or succeeds (then closed at once).
    private func canConnect(_ host: String, _ port: UInt16) -> Bool {
        let fd = socket(host.contains(":") ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { Glibc.close(fd) }
        return withSocketAddress(host, port) { Glibc.connect(fd, $0, $1) } == 0
    }
}
