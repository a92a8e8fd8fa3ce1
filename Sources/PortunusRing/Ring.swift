import CLiburing

/// How a ring is set up.
public struct RingOptions: Sendable {
    /// SQ entries (rounded up to a power of two by the kernel).
    public var entries: UInt32
    /// CQ entries as a multiple of SQ entries. Multishot accept and link timeouts post
    /// more completions than SQEs (two per linked connect), so the CQ is made larger
    /// than the SQ to avoid overflow between two reaps (IORING_SETUP_CQSIZE).
    public var completionMultiplier: UInt32
    /// `IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN`: one thread creates and
    /// drives the ring (true of every worker), so the kernel can skip submission locking
    /// and run completion task work only when we ask for events, in batches, instead of
    /// interrupting the thread (io_uring_setup(2)). Needs kernel >= 6.1.
    public var singleIssuer: Bool

    public init(entries: UInt32, completionMultiplier: UInt32 = 4, singleIssuer: Bool = true) {
        self.entries = entries
        self.completionMultiplier = completionMultiplier
        self.singleIssuer = singleIssuer
    }
}

/// One io_uring instance, created and driven by exactly one thread.
///
/// The C `struct io_uring` lives at a fixed heap address for the ring's life: a copy
/// would duplicate the queue heads (IO_URING_NOTES.md). All SQEs are obtained through
/// one choke point, ``nextSQE()``, which flushes the SQ when it is full instead of
/// failing; ``reserve(_:)`` makes room for a whole linked chain first so a chain is
/// never split across two submissions (a split chain silently loses its link).
public final class Ring {
    @usableFromInline let ring: UnsafeMutablePointer<io_uring>
    /// Preallocated scratch for io_uring_peek_batch_cqe (the for_each_cqe macro is not importable).
    private let cqeScratch: UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>
    /// Completions copied out of the CQ ring before handlers run.
    private let batch: UnsafeMutablePointer<Completion>
    private let batchCapacity: Int

    /// Number of SQ entries.
    public let submissionEntries: Int
    /// Number of CQ entries.
    public let completionEntries: Int
    /// How many times a full SQ (or a chain reservation) forced a submission.
    public private(set) var forcedFlushes = 0
    /// SQEs prepared but not yet submitted.
    public var pendingSubmissions: Int { Int(io_uring_sq_ready(ring)) }

    /// Creates a ring; fails with the kernel's errno (ENOSYS, EPERM when io_uring is
    /// disabled by `kernel.io_uring_disabled` or seccomp, ENOMEM when memlock is short).
    public init(_ options: RingOptions) throws(SystemError) {
        ring = .allocate(capacity: 1)
        ring.initialize(to: io_uring())
        var params = io_uring_params()
        params.flags = PU_IORING_SETUP_CQSIZE | PU_IORING_SETUP_SUBMIT_ALL
        params.cq_entries = options.entries * options.completionMultiplier
        if options.singleIssuer {
            params.flags |= PU_IORING_SETUP_SINGLE_ISSUER | PU_IORING_SETUP_DEFER_TASKRUN
        }
        let rc = io_uring_queue_init_params(options.entries, ring, &params)
        if rc < 0 {
            ring.deinitialize(count: 1)
            ring.deallocate()
            throw SystemError("io_uring_setup", result: rc)
        }
        // The ring fd is used on every io_uring_enter; registering it skips the fd
        // table lookup each time. Failure only costs that optimisation.
        _ = io_uring_register_ring_fd(ring)
        submissionEntries = Int(ring.pointee.sq.ring_entries)
        completionEntries = Int(ring.pointee.cq.ring_entries)
        batchCapacity = completionEntries
        cqeScratch = .allocate(capacity: batchCapacity)
        batch = .allocate(capacity: batchCapacity)
    }

    deinit {
        io_uring_queue_exit(ring)
        ring.deinitialize(count: 1)
        ring.deallocate()
        cqeScratch.deallocate()
        batch.deallocate()
    }

    /// The single choke point for SQEs: returns a cleared SQE, submitting what is
    /// queued first if the SQ is full. Never returns nil and never drops an operation.
    @usableFromInline
    func nextSQE() -> UnsafeMutablePointer<io_uring_sqe> {
        if let sqe = io_uring_get_sqe(ring) { return sqe }
        forcedFlushes += 1
        flush()
        guard let sqe = io_uring_get_sqe(ring) else {
            preconditionFailure("io_uring: SQ still full after a submission")
        }
        return sqe
    }

    /// Makes room for `count` SQEs that must go in one submission (a linked chain):
    /// if fewer are free, what is queued is submitted first.
    public func reserve(_ count: Int) {
        precondition(count <= submissionEntries, "a chain of \(count) SQEs cannot fit a \(submissionEntries)-entry SQ")
        if Int(io_uring_sq_space_left(ring)) < count {
            forcedFlushes += 1
            flush()
        }
    }

    /// Submits everything queued, retrying while the kernel is briefly out of resources.
    private func flush() {
        while true {
            let rc = io_uring_submit(ring)
            if rc >= 0 || rc == -EINTR { if io_uring_sq_ready(ring) == 0 { return } else { continue } }
            if rc == -EAGAIN || rc == -EBUSY {
                // Completions are waiting to be posted; flushing them frees kernel resources.
                _ = io_uring_get_events(ring)
                continue
            }
            preconditionFailure("io_uring_submit: \(SystemError("io_uring_submit", result: rc))")
        }
    }

    /// Submits what is queued without waiting.
    public func submit() {
        if io_uring_sq_ready(ring) > 0 { flush() }
    }

    /// Submits what is queued and waits until at least `minimum` completions are ready.
    /// Returns early on a signal (EINTR).
    public func submitAndWait(_ minimum: UInt32 = 1) {
        let rc = io_uring_submit_and_wait(ring, minimum)
        if rc >= 0 || rc == -EINTR || rc == -ETIME { return }
        if rc == -EAGAIN || rc == -EBUSY {
            _ = io_uring_get_events(ring)
            return
        }
        preconditionFailure("io_uring_submit_and_wait: \(SystemError("io_uring_enter", result: rc))")
    }

    /// Copies every ready completion into the batch, marks them seen, then calls
    /// `body` for each. Handlers may prepare and submit new SQEs freely: the CQ ring is
    /// already released. Returns the number of completions handled.
    @discardableResult
    public func reapCompletions(_ body: (Completion) -> Void) -> Int {
        let count = Int(io_uring_peek_batch_cqe(ring, cqeScratch, UInt32(batchCapacity)))
        guard count > 0 else { return 0 }
        for i in 0..<count {
            let cqe = cqeScratch[i]!
            batch[i] = Completion(
                userData: UserData(rawValue: pu_cqe_user_data(cqe)),
                result: pu_cqe_res(cqe),
                flags: pu_cqe_flags(cqe)
            )
        }
        io_uring_cq_advance(ring, UInt32(count))
        for i in 0..<count { body(batch[i]) }
        return count
    }

    /// Caps the kernel's io-wq worker threads for this ring (bounded, unbounded), so an
    /// operation the kernel cannot complete without blocking cannot fork an unbounded
    /// number of threads.
    public func limitWorkerThreads(bounded: UInt32, unbounded: UInt32) throws(SystemError) {
        var values: (UInt32, UInt32) = (bounded, unbounded)
        let rc = withUnsafeMutableBytes(of: &values) {
            io_uring_register_iowq_max_workers(ring, $0.baseAddress!.assumingMemoryBound(to: UInt32.self))
        }
        if rc < 0 { throw SystemError("io_uring_register_iowq_max_workers", result: rc) }
    }
}
