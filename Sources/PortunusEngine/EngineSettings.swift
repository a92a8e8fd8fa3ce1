import PortunusResolver
import PortunusRing

/// How a connection's bytes are moved between its two sockets.
public enum RelayMode: String, Sendable, CaseIterable {
    /// recv into a provided buffer ring, send from it: no kernel worker threads, and an
    /// idle connection holds no buffer. As cheap as `auto` on short exchanges; on bulk
    /// streams it copies every byte twice (README, "Relay paths").
    case buffers
    /// splice through a pipe: a half waits for readiness with a poll (holding no pipe),
    /// then takes a pipe from the worker's pool for as long as it streams, and splices
    /// with splice(2) calls of the worker's own. Fewer copies on bulk streams. When the worker's pipe budget is spent, a
    /// half falls back to the buffers path for that read.
    case splice
    /// Each half starts on the buffers path and moves to splice once it is streaming
    /// (``EngineSettings/spliceAfterFullBuffers`` recvs in a row filled a whole buffer),
    /// while the worker has pipes to spare: short exchanges keep the cheap path, bulk
    /// transfers get splice's lower CPU per byte. The default: measured against the
    /// other two on every workload of the peer harness (README, "Relay paths").
    case auto
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
    /// Connection slots per worker (two sockets each). nil until the engine works it out
    /// from `max_connections` and the open-file limit (``ResourceBudget``); a value set
    /// here (tests, benchmarks) is used as given.
    public var connectionsPerWorker: Int?
    /// SQ entries per ring.
    public var ringEntries: UInt32
    /// Provided buffers per worker (power of two) and their size, for ``RelayMode/buffers``.
    public var bufferCount: Int
    public var bufferSize: Int
    /// Provided buffers kept in the kernel's ring at least (the rest wait on a stack, the
    /// most recently used on top; see ``ProvidedBufferRing``): a steady stream cycles
    /// through this many, which stay in the cache, instead of through all `bufferCount`.
    public var bufferStock = 8
    /// Pipe size for ``RelayMode/splice`` (F_SETPIPE_SZ).
    public var pipeSize: Int
    /// ``RelayMode/auto``: full-buffer recvs in a row after which a half moves to splice.
    public var spliceAfterFullBuffers: Int
    /// Pipes a worker may hold (two fds each) on the splice and auto paths; past it,
    /// halves use buffers, so pipes cannot eat the open-file budget of connections.
    public var pipeLimit: Int
    /// Listen backlog per listener socket.
    public var backlog: Int32
    /// io-wq kernel threads per ring, for each of its two pools (bounded, unbounded):
    /// IORING_REGISTER_IOWQ_MAX_WORKERS. The engine submits nothing that needs one; the
    /// cap bounds what the kernel may still start.
    public var ioWorkersPerRing: Int
    /// Provided buffers per worker for UDP datagrams (power of two; 0: no UDP rule) and
    /// their size: the largest UDP payload (65,507 bytes) plus the kernel's header and
    /// the source address fit in one, so no datagram is ever cut.
    public var datagramBufferCount = 0
    public var datagramBufferSize = 64 * 1024 + 128
    /// `--dns-server`: the resolvers DNS-named targets are looked up with; empty: the
    /// servers of /etc/resolv.conf.
    public var dnsServers: [DNSServer] = []

    public init(
        workers: Int = ProcessSetup.onlineCPUs,
        relay: RelayMode = .auto,
        connectTimeoutMs: Int = 3000,
        preludeTimeoutMs: Int = 10_000,
        connectionsPerWorker: Int? = nil,
        ringEntries: UInt32 = 1024,
        bufferCount: Int = 512,
        bufferSize: Int = 64 * 1024,
        pipeSize: Int = 1 << 20,
        spliceAfterFullBuffers: Int = 16,
        pipeLimit: Int = 256,
        backlog: Int32 = 4096,
        ioWorkersPerRing: Int = 4
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
        self.pipeLimit = pipeLimit
        self.backlog = backlog
        self.ioWorkersPerRing = max(1, ioWorkersPerRing)
        self.connectionsPerWorker = connectionsPerWorker
    }
}
