import CLiburing

/// A provided buffer ring (IORING_REGISTER_PBUF_RING): `count` buffers of `bufferSize`
/// bytes that the kernel hands to buffer-select recvs as data arrives.
///
/// The kernel takes buffers from the ring's head and we can only give them back at its
/// tail, so a ring stocked with every buffer walks recvs through all of them in turn:
/// 512 × 64 KiB is 32 MiB per worker, far more than the caches, and all of it stays
/// resident after one bulk transfer. A ring made with a `stock` keeps only that many
/// buffers in the kernel's ring and the rest on a last-in-first-out stack, so the
/// buffer given back most recently is the next one stocked: the few buffers a steady
/// stream needs stay in the cache, and buffers deep in the stack are never touched. The
/// stock doubles whenever a recv found the ring empty while buffers sat on the stack
/// (``ranDry()``), and shrinks back while it is not needed; ``releaseIdleMemory()``
/// gives the pages of buffers left deep in the stack after a burst back to the kernel.
/// Buffers in the kernel's ring keep theirs until a recv takes them.
///
/// liburing 2.3 has no io_uring_setup_buf_ring (2.4), so the ring of entries is
/// mmap'd here (page aligned, as the kernel requires) and registered by hand. The
/// buffer memory is one anonymous mapping: pages are only backed once data lands,
/// so an idle forwarder stays small.
public final class ProvidedBufferRing {
    private let ring: Ring
    private let entries: UnsafeMutableRawPointer
    private let entriesBytes: Int
    private let bufRing: UnsafeMutablePointer<io_uring_buf_ring>
    private let memory: UnsafeMutableRawPointer
    private let memoryBytes: Int
    private let mask: Int32
    /// Which buffers the kernel has handed out and not been given back: one byte per
    /// buffer, written on every hand-over and every recycle. A buffer given back twice
    /// would be in the kernel's ring twice, and two recvs (of two connections) could
    /// then fill it while a send still reads it: that traps instead.
    private let held: UnsafeMutablePointer<Bool>
    /// Buffers handed out by the kernel and not yet recycled.
    public private(set) var heldCount = 0
    /// Buffers neither in the kernel's ring nor held, the most recently given back on top.
    private let spare: UnsafeMutablePointer<UInt16>
    private var spareCount = 0
    /// Buffers in the kernel's ring now (as far as completions have told us).
    private var stocked = 0
    /// How many buffers the kernel's ring is kept at, between `minimumStock` and `count`.
    public private(set) var stockTarget: Int
    private let minimumStock: Int
    /// madvise works on whole pages only: buffers of another size are never given back.
    private let pageAligned: Bool
    /// Whether a recv found the ring empty since the last ``releaseIdleMemory()``.
    private var ranDrySinceRelease = false
    /// Per buffer: the kernel has written to it since its pages were last given back, so
    /// it holds resident memory; and how many buffers are so.
    private let touched: UnsafeMutablePointer<Bool>
    public private(set) var touchedCount = 0
    /// Hand-overs since the stock last grew; past `stockDecayPeriod` it shrinks by a quarter.
    private var takesSinceDry = 0
    private let stockDecayPeriod = 4096

    /// Buffer group id that recvs name.
    public let groupID: UInt16
    public let count: Int
    public let bufferSize: Int

    /// `count` must be a power of two, at most 32768. `stock`: how many buffers the
    /// kernel's ring starts with and never goes below (nil: all of them, always).
    public init(ring: Ring, groupID: UInt16, count: Int, bufferSize: Int, stock: Int? = nil) throws(SystemError) {
        precondition(count > 0 && count & (count - 1) == 0 && count <= 32768, "buffer count must be a power of two <= 32768")
        minimumStock = min(count, max(1, stock ?? count))
        pageAligned = bufferSize % Int(getpagesize()) == 0
        stockTarget = minimumStock
        self.ring = ring
        self.groupID = groupID
        self.count = count
        self.bufferSize = bufferSize
        mask = io_uring_buf_ring_mask(UInt32(count))

        entriesBytes = count * pu_buf_ring_entry_size()
        guard let e = mmap(nil, entriesBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), Int(bitPattern: e) != -1 else {
            throw lastError("mmap")
        }
        entries = e
        memoryBytes = count * bufferSize
        guard let m = mmap(nil, memoryBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), Int(bitPattern: m) != -1 else {
            let error = lastError("mmap")
            munmap(e, entriesBytes)
            throw error
        }
        memory = m
        held = .allocate(capacity: count)
        held.initialize(repeating: false, count: count)
        spare = .allocate(capacity: count)
        touched = .allocate(capacity: count)
        touched.initialize(repeating: false, count: count)
        bufRing = e.assumingMemoryBound(to: io_uring_buf_ring.self)
        io_uring_buf_ring_init(bufRing)

        var reg = io_uring_buf_reg()
        reg.ring_addr = UInt64(UInt(bitPattern: e))
        reg.ring_entries = UInt32(count)
        reg.bgid = groupID
        let rc = io_uring_register_buf_ring(ring.ring, &reg, 0)
        if rc < 0 {
            held.deallocate()
            spare.deallocate()
            touched.deallocate()
            munmap(e, entriesBytes)
            munmap(m, memoryBytes)
            throw SystemError("io_uring_register_buf_ring", result: rc)
        }
        // Buffer 0 on top: the lowest addresses are the ones used.
        for bid in stride(from: count - 1, through: 0, by: -1) {
            spare[spareCount] = UInt16(bid)
            spareCount += 1
        }
        restock()
    }

    deinit {
        held.deallocate()
        spare.deallocate()
        touched.deallocate()
        _ = io_uring_unregister_buf_ring(ring.ring, Int32(groupID))
        munmap(entries, entriesBytes)
        munmap(memory, memoryBytes)
    }

    /// Records that a completion handed `bufferID` to the caller (IORING_CQE_F_BUFFER):
    /// from now until ``recycle(_:)`` the kernel will not put data in it.
    @inline(__always)
    public func take(_ bufferID: UInt16) {
        precondition(Int(bufferID) < count && !held[Int(bufferID)], "the kernel handed out buffer \(bufferID), which was never given back")
        held[Int(bufferID)] = true
        heldCount += 1
        if !touched[Int(bufferID)] {
            touched[Int(bufferID)] = true
            touchedCount += 1
        }
        stocked -= 1
        takesSinceDry += 1
        if takesSinceDry >= stockDecayPeriod {
            takesSinceDry = 0
            stockTarget = max(minimumStock, stockTarget - stockTarget / 4)
        }
        restock()
    }

    /// A recv found the kernel's ring empty (ENOBUFS). If buffers sat on the stack the
    /// stock was too small for how many recvs complete at once: it doubles, and the ring
    /// is filled up to it now. Each recv that found the ring empty is submitted again at
    /// once (``RelayHalf``'s `noBuffer(ringHasFree:)`), so doubling per ENOBUFS reaches
    /// what a burst needs within a round or two.
    @inline(__always)
    public func ranDry() {
        ranDrySinceRelease = true
        guard spareCount > 0 else { return }
        stockTarget = min(count, stockTarget * 2)
        takesSinceDry = 0
        restock()
    }

    /// Gives buffer `bufferID` back to the kernel once its bytes have been sent. Only a
    /// buffer taken and not yet given back may be: anything else traps.
    @inline(__always)
    public func recycle(_ bufferID: UInt16) {
        precondition(Int(bufferID) < count && held[Int(bufferID)], "buffer \(bufferID) given back while not held")
        held[Int(bufferID)] = false
        heldCount -= 1
        spare[spareCount] = bufferID
        spareCount += 1
        restock()
    }

    /// Touched buffers on the stack beyond the `stockTarget` kept on top: memory that
    /// ``releaseIdleMemory()`` can give back (counting every buffer in the kernel's ring
    /// as touched, so this is never true when there is nothing to release).
    public var hasIdleMemory: Bool {
        pageAligned && touchedCount - heldCount - stocked > stockTarget
    }

    /// Gives the pages of touched buffers deep in the stack back to the kernel
    /// (MADV_DONTNEED: the next write faults in zeroed pages), keeping the `stockTarget`
    /// on top, the next to be stocked; the stock itself halves first unless a recv found
    /// the ring empty since the last call. Buffers on the stack are in neither the
    /// kernel's ring nor a send, so nothing reads or writes them meanwhile (buffers in
    /// the kernel's ring are never touched here: a recv may be filling one). Returns how
    /// many buffers' memory went back.
    @discardableResult
    public func releaseIdleMemory() -> Int {
        if !ranDrySinceRelease { stockTarget = max(minimumStock, stockTarget / 2) }
        ranDrySinceRelease = false
        guard pageAligned else { return 0 }
        var released = 0
        for i in 0..<max(0, spareCount - stockTarget) {
            let bid = Int(spare[i])
            guard touched[bid] else { continue }
            _ = madvise(memory + bid * bufferSize, bufferSize, MADV_DONTNEED)
            touched[bid] = false
            released += 1
        }
        touchedCount -= released
        return released
    }

    /// Moves buffers from the top of the stack into the kernel's ring until it holds
    /// `stockTarget`, and publishes them with one tail update.
    @inline(__always)
    private func restock() {
        var added: Int32 = 0
        while stocked < stockTarget && spareCount > 0 {
            spareCount -= 1
            let bid = spare[spareCount]
            io_uring_buf_ring_add(bufRing, address(of: bid), UInt32(bufferSize), bid, mask, added)
            added += 1
            stocked += 1
        }
        if added > 0 { io_uring_buf_ring_advance(bufRing, added) }
    }

    @inline(__always)
    func address(of bufferID: UInt16) -> UnsafeMutableRawPointer {
        memory + Int(bufferID) * bufferSize
    }

    /// Copies bytes out of a buffer (tests and diagnostics only, not the hot path).
    public func bytes(of bufferID: UInt16, count: Int) -> [UInt8] {
        let p = address(of: bufferID)
        return (0..<count).map { p.load(fromByteOffset: $0, as: UInt8.self) }
    }
}
