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
    private let daemon: PeerDaemon

    public init(_ kind: Kind) throws {
        self.kind = kind
        port = freePort()
        daemon = try PeerDaemon(name: kind.rawValue)
        let dir = daemon.directory.path
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
            // The readiness probe sends no PROXY header; the receiver drops it, harmlessly.
            try daemon.start("/usr/sbin/nginx", ["-p", "\(dir)/", "-e", "\(dir)/error.log", "-c", "\(dir)/nginx.conf", "-g", "daemon off;"],
                             package: "nginx", port: port)
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
            try daemon.start("/usr/sbin/haproxy", ["-f", "\(dir)/haproxy.cfg", "-db"], package: "haproxy", port: port)
        }
    }

    public var log: String { daemon.log }

    public func stop() { daemon.stop() }
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
