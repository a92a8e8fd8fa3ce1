import Glibc
import Logging
import PortunusConfig
import PortunusEngine
import PortunusStats

/// The Prometheus endpoint: `GET /metrics` over HTTP/1.1 on a thread of its own, so a
/// scrape (reading the counters, building the text) never runs on a worker's ring.
///
/// A plain blocking-style listener driven by `poll` with time boxes, not SwiftNIO: the
/// endpoint answers one scraper every few seconds, and an event loop, its threads and
/// its allocator traffic would be a second runtime in a forwarder whose data path is
/// io_uring and whose other server (the stats socket) is the same kind of thread.
///
/// Bounded: one client at a time, each given at most ``clientBudgetMs`` for the whole
/// exchange (request head, response, close) and at most ``HTTPRequestHead/maxBytes`` of
/// request head; a slow or hostile client is cut off at either bound and the next one
/// served. Every response closes the connection (`Connection: close`). `GET /metrics`
/// answers 200 with the text format, another path 404, another method 405, a malformed
/// head 400, an oversized one 431.
public final class MetricsServer: @unchecked Sendable {
    // @unchecked: the descriptors are immutable after `start`; the server thread is the
    // only one to use `listenFD` and clients; `stop` only writes the wake pipe and joins.
    /// How long one client may hold the thread, from accept to close.
    public static let clientBudgetMs = 5000
    /// After the response, how long the client is given to close first.
    static let lingerMs: Int64 = 1000
    /// The text format's media type (Prometheus's exposition format 0.0.4).
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// The address served.
    public let address: ListenAddress
    private let exporter: MetricsExporter
    private let snapshot: @Sendable () -> MetricsSnapshot
    private let logger: Logger
    private let budgetMs: Int
    private let listenFD: Int32
    private let wake: WakePipe
    private var thread: pthread_t?

    private init(address: ListenAddress, exporter: MetricsExporter, snapshot: @escaping @Sendable () -> MetricsSnapshot,
                 logger: Logger, budgetMs: Int, listenFD: Int32, wake: WakePipe) {
        self.address = address
        self.budgetMs = budgetMs
        self.exporter = exporter
        self.snapshot = snapshot
        self.logger = logger
        self.listenFD = listenFD
        self.wake = wake
    }

    /// Binds `address` and starts serving, logging `standalone.metrics_listening`; nil
    /// when it cannot be bound (logged as `standalone.metrics_failed`: the forwarder runs
    /// on without the endpoint, as it does without a stats socket). `snapshot` is called
    /// on the server thread once per scrape and must only read. `clientBudgetMs` is
    /// ``clientBudgetMs`` but in tests.
    public static func start(address: ListenAddress, exporter: MetricsExporter, logger: Logger,
                             clientBudgetMs: Int = MetricsServer.clientBudgetMs,
                             snapshot: @escaping @Sendable () -> MetricsSnapshot) -> MetricsServer? {
        let listenFD: Int32
        let wake: WakePipe
        do throws(MetricsSocket.Failure) {
            listenFD = try MetricsSocket.listen(address)
            guard let pipe = WakePipe.make() else {
                let error = MetricsSocket.Failure("pipe")
                close(listenFD)
                throw error
            }
            wake = pipe
        } catch {
            logger.error("metrics endpoint not served", metadata: [
                "event": "standalone.metrics_failed", "address": "\(address)", "error": "\(error)",
            ])
            return nil
        }
        let server = MetricsServer(address: address, exporter: exporter, snapshot: snapshot, logger: logger,
                                   budgetMs: clientBudgetMs, listenFD: listenFD, wake: wake)
        server.thread = spawnThread { server.serve() }
        logger.info("metrics endpoint listening", metadata: [
            "event": "standalone.metrics_listening", "address": "\(address)", "path": "/metrics",
        ])
        return server
    }

    /// Stops serving: the listener is closed and the thread joined before this returns
    /// (a client being served is dropped at once). Safe to call more than once.
    public func stop() {
        guard let thread else { return }
        wake.stop(thread)
        self.thread = nil
    }

    // MARK: the server thread

    private func serve() {
        while true {
            var fds = [pollfd(fd: wake.readFD, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)]
            if poll(&fds, 2, -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            if fds[0].revents != 0 { break }
            guard fds[1].revents != 0 else { continue }
            let client = accept(listenFD, nil, nil)
            if client < 0 {
                // Out of descriptors: the pending connection keeps the listener readable,
                // so wait a little rather than spin (the stats socket does the same).
                if errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM { sleepMs(100) }
                continue
            }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
            if !serveClient(client) { break }
        }
        close(listenFD)
    }

    /// One exchange within the client's budget; false when `stop` interrupted it.
    private func serveClient(_ fd: Int32) -> Bool {
        defer { close(fd) }
        let deadline = monotonicMs() + Int64(budgetMs)
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 2048)
        var response: [UInt8]
        reading: while true {
            switch HTTPRequestHead.parse(received[...]) {
            case .complete(let head):
                response = respond(to: head)
                break reading
            case .invalid:
                response = Self.response(status: "400 Bad Request", body: Array("malformed HTTP/1.x request\n".utf8))
                break reading
            case .tooLarge:
                response = Self.response(status: "431 Request Header Fields Too Large",
                                         body: Array("request head over \(HTTPRequestHead.maxBytes) bytes\n".utf8))
                break reading
            case .needMore:
                switch waitFor(fd, Int16(POLLIN), until: deadline) {
                case .stop: return false
                case .timedOut: return true
                case .ready: break
                }
                let room = min(chunk.count, HTTPRequestHead.maxBytes - received.count)
                let n = recv(fd, &chunk, room, 0)
                if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                guard n > 0 else { return true }   // closed or reset before a whole head
                received += chunk[0..<n]
            }
        }
        var sent = 0
        while sent < response.count {
            let n = response.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n > 0 { sent += n; continue }
            guard n < 0 && (errno == EAGAIN || errno == EINTR) else { return true }
            switch waitFor(fd, Int16(POLLOUT), until: deadline) {
            case .stop: return false
            case .timedOut: return true
            case .ready: continue
            }
        }
        // Our side done; wait for the client's close (a scraper closes on
        // `Connection: close` as soon as it has read the body), reading what it may still
        // send, so close() does not reset a response not yet read. At most 1 s of the
        // budget: a client that keeps the connection open only delays the next one that long.
        shutdown(fd, Int32(SHUT_WR))
        let lingerDeadline = min(deadline, monotonicMs() + Self.lingerMs)
        while true {
            switch waitFor(fd, Int16(POLLIN), until: lingerDeadline) {
            case .stop: return false
            case .timedOut: return true
            case .ready: break
            }
            let n = recv(fd, &chunk, chunk.count, 0)
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            if n <= 0 { return true }
        }
    }

    private func respond(to head: HTTPRequestHead) -> [UInt8] {
        guard head.path == "/metrics" else {
            return Self.response(status: "404 Not Found", body: Array("not found: the metrics are at /metrics\n".utf8))
        }
        guard head.method == "GET" else {
            return Self.response(status: "405 Method Not Allowed", extraHeaders: "Allow: GET\r\n",
                                 body: Array("method \(head.method) not allowed: use GET\n".utf8))
        }
        return Self.response(status: "200 OK", contentType: Self.contentType, body: exporter.exposition(of: snapshot()))
    }

    static func response(status: String, contentType: String = "text/plain; charset=utf-8", extraHeaders: String = "",
                         body: [UInt8]) -> [UInt8] {
        let head = "HTTP/1.1 \(status)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n"
            + extraHeaders + "Connection: close\r\n\r\n"
        return Array(head.utf8) + body
    }

    private enum Wait { case ready, timedOut, stop }

    /// Polls `fd` for `events` and the wake pipe until `deadline` (CLOCK_MONOTONIC ms).
    private func waitFor(_ fd: Int32, _ events: Int16, until deadline: Int64) -> Wait {
        while true {
            let left = deadline - monotonicMs()
            guard left > 0 else { return .timedOut }
            var fds = [pollfd(fd: wake.readFD, events: Int16(POLLIN), revents: 0), pollfd(fd: fd, events: events, revents: 0)]
            let rc = poll(&fds, 2, Int32(clamping: left))
            if rc < 0 && errno == EINTR { continue }
            if rc < 0 || fds[0].revents != 0 { return .stop }
            if fds[1].revents != 0 { return .ready }
        }
    }

    private func monotonicMs() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    private func sleepMs(_ ms: Int) {
        var fds = [pollfd(fd: wake.readFD, events: Int16(POLLIN), revents: 0)]
        _ = poll(&fds, 1, Int32(ms))
    }
}
