import CLiburing

/// Fixed-capacity storage for plain values (no references), reserved at once and backed
/// by memory only where it is written (an anonymous MAP_NORESERVE mapping reads as
/// zeros until then). Sized for the largest number of connections a worker may hold,
/// it costs resident memory in proportion to the slots actually used, so start-up
/// memory does not grow with the open-file limit.
public final class ReservedArray<Element: BitwiseCopyable> {
    public let base: UnsafeMutablePointer<Element>
    public let capacity: Int
    private let mappedBytes: Int

    public init(capacity: Int) throws(SystemError) {
        precondition(capacity > 0)
        self.capacity = capacity
        let (pointer, mapped) = try reserveMemory(bytes: capacity * MemoryLayout<Element>.stride)
        mappedBytes = mapped
        base = pointer.bindMemory(to: Element.self, capacity: capacity)
    }

    deinit { munmap(base, mappedBytes) }

    /// Pages of the reservation that are backed by memory now (mincore(2)): what the
    /// storage really costs, for tests and diagnostics.
    public func residentPages() -> Int {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var vector = [UInt8](repeating: 0, count: mappedBytes / page)
        guard mincore(UnsafeMutableRawPointer(base), mappedBytes, &vector) == 0 else { return -1 }
        return vector.reduce(0) { $0 + Int($1 & 1) }
    }

    @inline(__always)
    public subscript(index: Int) -> Element {
        _read { yield base[index] }
        _modify { yield &base[index] }
    }
}

/// An anonymous private mapping of at least `bytes` (whole pages), reserved without
/// committing memory (MAP_NORESERVE): pages read as zeros and are backed on first write.
/// Returns the address and the mapped length (for munmap).
func reserveMemory(bytes: Int) throws(SystemError) -> (UnsafeMutableRawPointer, Int) {
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let mapped = (bytes + page - 1) / page * page
    guard let p = mmap(nil, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
          Int(bitPattern: p) != -1 else {
        throw lastError("mmap(\(mapped) bytes)")
    }
    return (p, mapped)
}
