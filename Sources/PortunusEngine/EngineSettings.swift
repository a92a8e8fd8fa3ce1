import PortunusRing

/// How a connection's bytes are moved between its two sockets.
public enum RelayMode: String, Sendable, CaseIterable {
    /// recv into a provided buffer ring, send from it: no kernel worker threads, and an
    /// idle connection holds no buffer. The default: faster on short connections
    /// (see README, "Choosing the relay path").
    case buffers
    /// splice through a pipe per direction, a poll linked in front of each splice so an
    /// idle connection parks no io-wq thread. Fewer copies on bulk streams.
    case splice
    /// Each half starts on the buffers path and moves to splice once it is streaming
    /// (``EngineSettings/spliceAfterFullBuffers`` recvs in a row filled a whole buffer),
    /// while the worker has pipes to spare: short exchanges keep the cheap path, bulk
    /// transfers get splice's lower CPU per byte.
    case auto

    /// Whether workers need a provided buffer ring.
    var usesBuffers: Bool { self != .splice }
}

/// Engine tuning that does not come from the config file.
public struct EngineSettings: Sendable {
    /// Workers: one thread and one ring each. Default: online CPUs.
    public var workers: Int
    public var relay: RelayMode
    /// Upstream connect time box, enforced by a linked IORING_OP_LINK_TIMEOUT (3 s, as Portunus).
    public var connectTimeoutMs: Int
    /// PROXY header send time box, a linked IORING_OP_LINK_TIMEOUT (10 s, as SPEC.md §4).
    public var preludeTimeoutMs: Int
    /// Connection slots per worker (two sockets each). Default: what the open-file limit allows.
    public var connectionsPerWorker: Int
    /// SQ entries per ring.
    public var ringEntries: UInt32
    /// Provided buffers per worker (power of two) and their size, for ``RelayMode/buffers``.
    public var bufferCount: Int
    public var bufferSize: Int
    /// Pipe size for ``RelayMode/splice`` (F_SETPIPE_SZ).
    public var pipeSize: Int
    /// ``RelayMode/auto``: full-buffer recvs in a row after which a half moves to splice.
    public var spliceAfterFullBuffers: Int
    /// ``RelayMode/auto``: pipes a worker may hold (two fds each); past it, halves stay
    /// on buffers, so the open-file budget of connections is not eaten by pipes.
    public var autoPipeLimit: Int
    /// Listen backlog per listener socket.
    public var backlog: Int32

    public init(
        workers: Int = ProcessSetup.onlineCPUs,
        relay: RelayMode = .buffers,
        connectTimeoutMs: Int = 3000,
        preludeTimeoutMs: Int = 10_000,
        connectionsPerWorker: Int? = nil,
        ringEntries: UInt32 = 1024,
        bufferCount: Int = 512,
        bufferSize: Int = 64 * 1024,
        pipeSize: Int = 1 << 20,
        spliceAfterFullBuffers: Int = 16,
        autoPipeLimit: Int = 256,
        backlog: Int32 = 4096
    ) {
        self.workers = max(1, workers)
        self.relay = relay
        self.connectTimeoutMs = connectTimeoutMs
        self.preludeTimeoutMs = preludeTimeoutMs
        self.ringEntries = ringEntries
        self.bufferCount = bufferCount
        self.bufferSize = bufferSize
        self.pipeSize = pipeSize
        self.spliceAfterFullBuffers = spliceAfterFullBuffers
        self.autoPipeLimit = autoPipeLimit
        self.backlog = backlog
        if let connectionsPerWorker {
            self.connectionsPerWorker = connectionsPerWorker
        } else {
            // Two sockets per connection, plus up to two pipes (four fds) on the splice
            // path; keep 256 fds for listeners, rings, logging and the stats socket.
            let fdsPerConnection = relay == .splice ? 6 : 2
            let pipeFDs = relay == .auto ? 2 * autoPipeLimit : 0
            let limit = ProcessSetup.raiseOpenFileLimit()
            self.connectionsPerWorker = max(64, ((limit - 256) / self.workers - pipeFDs) / fdsPerConnection)
        }
    }
}
