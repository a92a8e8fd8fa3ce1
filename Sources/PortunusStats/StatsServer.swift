import Glibc
import Logging
import PortunusEngine
import Synchronization

/// The stats socket (PORTUNUS_COMPAT.md): a Unix stream socket served by a thread of
/// its own, so the workers never wait on a reader. Each client gets the hello and a
/// snapshot at once, then a snapshot every `refresh_ms` from its own connect time, `seq`
/// counting per client. Bounded: at most 16 clients (a 17th is closed without a byte),
/// at most one line queued per client (a client still holding the previous line skips
/// a snapshot), and a client that has not taken a line within 5 s is dropped. Clients
/// are never read from. The socket file is removed when the server stops.
///
/// A reload replaces the documents (``replace(documents:)``): a connected client is sent
/// the new hello just before its next snapshot, so the rule list it holds always
/// matches the snapshots that follow.
public final class StatsServer: @unchecked Sendable {
    // @unchecked: `clients` and the descriptors are touched by the server thread only,
    // after `start` hands them over; `stop` only writes the eventfd and joins.
    public static let maxClients = 16
    public static let writeTimeoutMs: UInt64 = 5000
    static let clientBufferBytes: Int32 = 64 << 10
    /// After accept fails for want of descriptors, the listener is left alone this long
    /// (the pending connection keeps it readable: polling it would spin).
    static let acceptBackoffMs: UInt64 = 100

    private struct Client {
        let fd: Int32
        var seq: UInt64 = 0
        var nextDueMs: UInt64
        var pending: [UInt8] = []
        var written = 0
        var pendingSinceMs: UInt64 = 0
        /// The documents whose hello this client was sent (held, so that a reload's new
        /// documents can never be mistaken for them).
        var hello: StatsDocuments
    }

    public let path: String
    private let current: Mutex<StatsDocuments>
    private let logger: Logger
    private let listenFD: Int32
    private let wake: WakePipe
    private var clients: [Client] = []
    private var thread: pthread_t?
    private var acceptPausedUntilMs: UInt64 = 0
    /// The socket file we bound (device, inode): removed at exit only if it is still ours.
    private var boundFile: (dev_t, ino_t)?

    private init(path: String, documents: StatsDocuments, logger: Logger, listenFD: Int32, wake: WakePipe) {
        self.path = path
        current = Mutex(documents)
        self.logger = logger
        self.listenFD = listenFD
        self.wake = wake
    }

    /// Binds `path` and starts serving; nil when the socket cannot be set up (logged:
    /// the forwarder runs on without it, as Portunus does).
    public static func start(path: String, documents: StatsDocuments, logger: Logger) -> StatsServer? {
        let listenFD: Int32
        do {
            listenFD = try bind(path)
        } catch {
            logger.error("stats socket not served", metadata: ["event": "stats_socket_bind_failed", "path": "\(path)", "error": "\(error.reason)"])
            return nil
        }
        // stop() writes a byte to this pipe; the server thread polls its other end.
        guard let wake = WakePipe.make() else {
            logger.error("stats socket not served", metadata: ["event": "stats_socket_bind_failed", "path": "\(path)", "error": "pipe: errno \(errno)"])
            close(listenFD)
            unlink(path)
            return nil
        }
        let server = StatsServer(path: path, documents: documents, logger: logger, listenFD: listenFD, wake: wake)
        var info = stat()
        if lstat(path, &info) == 0 { server.boundFile = (info.st_dev, info.st_ino) }
        server.thread = spawnThread { server.serve() }
        logger.info("stats socket listening", metadata: ["event": "stats_socket_listening", "path": "\(path)"])
        return server
    }

    /// The documents served now.
    public var documents: StatsDocuments { current.withLock { $0 } }

    /// Serves `documents` from now on (a reload's rules); each connected client gets
    /// its hello before its next snapshot.
    public func replace(documents: StatsDocuments) {
        current.withLock { $0 = documents }
    }

    /// Stops serving: every client is closed and the socket file removed before this returns.
    public func stop() {
        guard let thread else { return }
        wake.stop(thread)
        self.thread = nil
    }

    struct SetupError: Error { let reason: String }

    /// The parent directory made if missing (0750), a stale socket replaced, a live one
    /// (another daemon's) left alone, then bind, listen and chmod 0660.
    static func bind(_ path: String) throws(SetupError) -> Int32 {
        guard var address = unixSocketAddress(path) else {
            throw SetupError(reason: "the path is empty or longer than \(maxUnixPathBytes) bytes")
        }
        try makeParent(of: path)
        var info = stat()
        if lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFSOCK else { throw SetupError(reason: "\(path) exists and is not a socket") }
            // Only a refused connect proves a socket stale; one someone answers on (or
            // that we may not even try) belongs to another daemon: never take it over.
            let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
            guard probe >= 0 else { throw SetupError(reason: "socket: errno \(errno)") }
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(probe, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            let why = errno
            close(probe)
            guard rc != 0 else { throw SetupError(reason: "another process serves \(path)") }
            guard why == ECONNREFUSED || why == ENOENT else {
                throw SetupError(reason: "\(path) exists and cannot be probed (\(String(cString: strerror(why)))); not replaced")
            }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw SetupError(reason: "socket: errno \(errno)") }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else {
            let e = errno
            close(fd)
            throw SetupError(reason: "bind: \(String(cString: strerror(e))) (errno \(e))")
        }
        guard listen(fd, 64) == 0, chmod(path, 0o660) == 0 else {
            let e = errno
            close(fd)
            unlink(path)
            throw SetupError(reason: "listen/chmod: \(String(cString: strerror(e))) (errno \(e))")
        }
        return fd
    }

    private static func makeParent(of path: String) throws(SetupError) {
        var parts = path.split(separator: "/", omittingEmptySubsequences: false).dropLast()
        guard !parts.isEmpty else { return }
        var prefix = path.hasPrefix("/") ? "" : "."
        if path.hasPrefix("/") { parts = parts.dropFirst() }
        for part in parts where !part.isEmpty {
            prefix += "/" + part
            if mkdir(prefix, 0o750) != 0 && errno != EEXIST {
                throw SetupError(reason: "mkdir \(prefix): \(String(cString: strerror(errno)))")
            }
        }
    }

    // MARK: the server thread

    private func serve() {
        var fds: [pollfd] = []
        while true {
            let documents = self.documents
            let now = StatsDocuments.monotonicMs()
            var waitMs: Int32 = acceptPausedUntilMs > now ? Int32(clamping: acceptPausedUntilMs - now) : -1
            for client in clients {
                var due = client.nextDueMs
                if !client.pending.isEmpty { due = min(due, client.pendingSinceMs + Self.writeTimeoutMs) }
                let ms = Int32(clamping: due > now ? due - now : 0)
                waitMs = waitMs < 0 ? ms : min(waitMs, ms)
            }
            fds.removeAll(keepingCapacity: true)
            fds.append(pollfd(fd: wake.readFD, events: Int16(POLLIN), revents: 0))
            // A negative fd is skipped by poll: the listener while accepting is paused.
            fds.append(pollfd(fd: acceptPausedUntilMs > now ? -1 : listenFD, events: Int16(POLLIN), revents: 0))
            for client in clients {
                // POLLHUP and POLLERR come unasked: a client that only shut its writing
                // side (nc -N, socat) still reads, and stays.
                fds.append(pollfd(fd: client.fd, events: Int16(client.pending.isEmpty ? 0 : POLLOUT), revents: 0))
            }
            if poll(&fds, nfds_t(fds.count), waitMs) < 0 && errno != EINTR { break }
            if fds[0].revents != 0 { break }
            let after = StatsDocuments.monotonicMs()
            // Clients first (their pollfds follow the listener's in `clients` order), then new ones.
            var keep: [Client] = []
            for (i, var client) in clients.enumerated() {
                if fds[i + 2].revents & (Int16(POLLHUP) | Int16(POLLERR)) != 0 {
                    close(client.fd)
                    continue
                }
                if client.nextDueMs <= after {
                    if client.pending.isEmpty {
                        client.seq += 1
                        let hello = client.hello === documents ? "" : documents.hello + "\n"
                        client.hello = documents
                        queue(&client, hello + documents.snapshot(seq: client.seq) + "\n", now: after)
                    }
                    // A client behind by more than a period is not sent a burst to catch up.
                    client.nextDueMs = max(client.nextDueMs + documents.refreshMs, after + 1)
                }
                if !flush(&client) { close(client.fd); continue }
                if !client.pending.isEmpty && after >= client.pendingSinceMs + Self.writeTimeoutMs {
                    logger.debug("stats client dropped", metadata: ["event": "stats_socket_client_dropped", "reason": "not reading for 5 s"])
                    close(client.fd)
                    continue
                }
                keep.append(client)
            }
            clients = keep
            if fds[1].revents != 0 { acceptClients(now: after, documents) }
        }
        for client in clients { close(client.fd) }
        clients.removeAll()
        close(listenFD)
        // A daemon started since (after this one's socket was found stale or removed)
        // may have put its own socket at the path: only ours is removed.
        var info = stat()
        if let (dev, ino) = boundFile, lstat(path, &info) == 0, info.st_dev == dev, info.st_ino == ino { unlink(path) }
    }

    private func acceptClients(now: UInt64, _ documents: StatsDocuments) {
        while true {
            let fd = accept(listenFD, nil, nil)
            if fd < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                if errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM {
                    acceptPausedUntilMs = now + Self.acceptBackoffMs
                }
                return
            }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            // A Unix stream socket queues against the sender's buffer: 64 KiB per client
            // bounds what a client that stopped reading holds in the kernel, and lets the
            // 5 s write timeout see it stall within a few lines.
            var bufferBytes: Int32 = Self.clientBufferBytes
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufferBytes, socklen_t(MemoryLayout<Int32>.size))
            guard clients.count < Self.maxClients else {
                close(fd)
                continue
            }
            var client = Client(fd: fd, seq: 1, nextDueMs: now + documents.refreshMs, hello: documents)
            queue(&client, documents.hello + "\n" + documents.snapshot(seq: 1) + "\n", now: now)
            if flush(&client) { clients.append(client) } else { close(fd) }
        }
    }

    private func queue(_ client: inout Client, _ text: String, now: UInt64) {
        client.pending = Array(text.utf8)
        client.written = 0
        client.pendingSinceMs = now
    }

    /// Writes what the socket takes now; false when the client is gone.
    private func flush(_ client: inout Client) -> Bool {
        while client.written < client.pending.count {
            let n = client.pending.withUnsafeBytes {
                send(client.fd, $0.baseAddress! + client.written, $0.count - client.written, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            }
            if n > 0 { client.written += n; continue }
            if n < 0 && errno == EINTR { continue }
            return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
        }
        client.pending.removeAll(keepingCapacity: true)
        client.written = 0
        return true
    }
}
