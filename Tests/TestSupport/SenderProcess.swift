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
    private let daemon: PeerDaemon

    /// The unique id HAProxy's v2 header carries for a client at `host`:`port` (its
    /// `unique-id-format` below), as the receiver's `unique_id` shows it (hex).
    public static func uniqueIDHex(clientHost host: String, clientPort port: UInt16) -> String {
        Array("lb-\(host)-\(port)".utf8).map { String(format: "%02X", $0) }.joined()
    }

    public init(_ kind: Kind, target: UInt16) throws {
        self.kind = kind
        port = freePort()
        daemon = try PeerDaemon(name: "sender-\(kind.rawValue)")
        let dir = daemon.directory.path
        // Ready once it accepts: the probe's bare connection reaches the forwarder behind
        // with a header and nothing else, and is dropped there (harmless).
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
            try daemon.start("/usr/sbin/nginx", ["-p", "\(dir)/", "-e", "\(dir)/error.log", "-c", "\(dir)/nginx.conf", "-g", "daemon off;"],
                             package: "nginx", port: port)
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
            try daemon.start("/usr/sbin/haproxy", ["-f", "\(dir)/haproxy.cfg", "-db"], package: "haproxy", port: port)
        }
    }

    public var log: String { daemon.log }

    public func stop() { daemon.stop() }
}
