import CLiburing

/// Caller-owned bytes at a fixed address that the kernel may read until an operation
/// completes (per-connection PROXY preludes, the unsent tails of stalled sends).
///
/// The storage is an anonymous mapping reserved at once and backed by memory only
/// where it is written (MAP_NORESERVE): sized for every connection slot, it costs
/// resident memory only for the slots in use, and ``discard(offset:length:)`` hands
/// pages back once their bytes are sent.
public final class PinnedBytes {
    let base: UnsafeMutableRawPointer
    public let capacity: Int
    private let mappedBytes: Int

    public init(capacity: Int) throws(SystemError) {
        precondition(capacity > 0)
        self.capacity = capacity
        (base, mappedBytes) = try reserveMemory(bytes: capacity)
    }

    deinit { munmap(base, mappedBytes) }

    /// Copies `bytes` to `offset`.
    public func store(_ bytes: some Collection<UInt8>, at offset: Int) {
        precondition(offset >= 0 && offset + bytes.count <= capacity)
        var i = offset
        for b in bytes { base.storeBytes(of: b, toByteOffset: i, as: UInt8.self); i += 1 }
    }

    /// Copies `length` bytes of provided buffer `bufferID`, from `sourceOffset`, to `offset`.
    public func copy(from buffers: ProvidedBufferRing, bufferID: UInt16, sourceOffset: Int, length: Int, to offset: Int) {
        precondition(offset >= 0 && offset + length <= capacity && sourceOffset >= 0 && sourceOffset + length <= buffers.bufferSize)
        (base + offset).copyMemory(from: buffers.address(of: bufferID) + sourceOffset, byteCount: length)
    }

    /// Lends `length` writable bytes at `offset` (e.g. to encode a PROXY header in
    /// place); the caller must not keep the pointer.
    public func withMutableBytes<R>(offset: Int, length: Int, _ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        precondition(offset >= 0 && offset + length <= capacity)
        return try body(UnsafeMutableRawBufferPointer(start: base + offset, count: length))
    }

    /// Gives the whole pages inside `offset ..< offset + length` back to the kernel
    /// (MADV_DONTNEED): they read as zeros afterwards and cost no memory until written.
    public func discard(offset: Int, length: Int) {
        precondition(offset >= 0 && offset + length <= capacity)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (offset + page - 1) / page * page
        let end = (offset + length) / page * page
        guard end > start else { return }
        _ = madvise(base + start, end - start, MADV_DONTNEED)
    }

    /// Reads `length` bytes at `offset` (for tests and diagnostics).
    public func load(at offset: Int, length: Int) -> [UInt8] {
        (0..<length).map { base.load(fromByteOffset: offset + $0, as: UInt8.self) }
    }
}
