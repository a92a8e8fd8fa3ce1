import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real PROXY protocol receiver from Debian's packages, used as an independent oracle:
/// nginx (`listen ... proxy_protocol`) or HAProxy (`bind ... accept-proxy`), each
/// answering an HTTP request with the client address the PROXY header told it:
/// `src=ADDR:PORT dst=ADDR:PORT` (HAProxy adds a line with two v2 TLVs it received:
/// `authority=TEXT unique_id=HEX`). Listens on 127.0.0.1 and ::1 at one ephemeral port;
/// everything it writes stays in its own temp directory; killed on `stop()`/deinit.
public final class ReceiverProcess: @unchecked Sendable {
    // @unchecked: used from the test's own thread only.
    public enum Kind: String, Sendable, CaseIterable { case nginx, haproxy }

    public let kind: Kind
    public let port: UInt16
    private let process = Process()
    private let directory: URL

    public init(_ kind: Kind) throws {
        self.kind = kind
        port = freePort()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("pu-\(kind.rawValue)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let dir = directory.path
        switch kind {
        case .nginx:
            let conf = """
            worker_processes 1;
            pid \(dir)/nginx.pid;
            events { worker_connections 256; }
            http {
                access_log off;
                server {
                    listen 127.0.0.1:\(port) proxy_protocol;
                    listen [::1]:\(port) proxy_protocol;
                    location / { return 200 "src=$proxy_protocol_addr:$proxy_protocol_port dst=$proxy_protocol_server_addr:$proxy_protocol_server_port\\n"; }
                }
            }
            """
            try conf.write(toFile: "\(dir)/nginx.conf", atomically: true, encoding: .utf8)
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/nginx")
            process.arguments = ["-p", "\(dir)/", "-e", "\(dir)/error.log", "-c", "\(dir)/nginx.conf", "-g", "daemon off;"]
        case .haproxy:
            let conf = """
            global
                maxconn 256
            defaults
                mode http
                timeout connect 5s
                timeout client 10s
                timeout server 10s
            frontend receiver
                bind 127.0.0.1:\(port) accept-proxy
                bind [::1]:\(port) accept-proxy
                http-request return status 200 content-type text/plain lf-string "src=%[src]:%[src_port] dst=%[dst]:%[dst_port]\\nauthority=%[fc_pp_authority] unique_id=%[fc_pp_unique_id,hex]\\n"
            """
            // HAProxy refuses a file whose last line has no LF.
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
            throw TestError("\(process.executableURL!.path) is missing: install Debian's \(kind.rawValue) package (the README's test command does)")
        }
        try process.run()
        // Ready when both addresses accept. The probe sends no PROXY header; the
        // receiver drops it, which is harmless.
        let deadline = Date().addingTimeInterval(10)
        for host in ["127.0.0.1", "::1"] {
            while (try? TestSocket.connect(host, port)) == nil {
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
}

extension TestSocket {
    /// The local address of this socket: ("127.0.0.1" or "::1"-style text, port).
    public var localAddress: (host: String, port: UInt16) {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = Int32(storage.ss_family)
        return withUnsafePointer(to: &storage) { p in
            if family == AF_INET6 {
                var sin6 = UnsafeRawPointer(p).load(as: sockaddr_in6.self)
                inet_ntop(AF_INET6, &sin6.sin6_addr, &text, socklen_t(text.count))
                return (String(cString: text), UInt16(bigEndian: sin6.sin6_port))
            }
            var sin = UnsafeRawPointer(p).load(as: sockaddr_in.self)
            inet_ntop(AF_INET, &sin.sin_addr, &text, socklen_t(text.count))
            return (String(cString: text), UInt16(bigEndian: sin.sin_port))
        }
    }
}
