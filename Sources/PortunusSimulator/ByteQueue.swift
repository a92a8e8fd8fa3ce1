@_spi(Simulation) import PortunusEngine
/// A FIFO of bytes: appended at the tail, consumed from the head.
struct ByteQueue {
    private var storage: [UInt8] = []
    private var head = 0

    var count: Int { storage.count - head }
    var isEmpty: Bool { count == 0 }

    mutating func append(_ bytes: some Sequence<UInt8>) { storage.append(contentsOf: bytes) }

    /// Removes and returns up to `limit` bytes from the head.
    mutating func take(_ limit: Int) -> ArraySlice<UInt8> {
        let n = min(limit, count)
        let out = storage[head..<(head + n)]
        head += n
        if head > 4096 && head * 2 > storage.count {
            storage.removeFirst(head)
            head = 0
            return ArraySlice(out)
        }
        return out
    }

    /// Up to `limit` bytes from the head, left in place (MSG_PEEK).
    func peek(_ limit: Int) -> ArraySlice<UInt8> {
        storage[head..<(head + min(limit, count))]
    }

    mutating func removeAll() { storage.removeAll(); head = 0 }
}

/// Deterministic pseudo-random numbers (xorshift64*), so a seed replays exactly; the
/// tests use it too (`SeededRandom` in TestSupport).
public struct SimRandom: Sendable {
    private var state: UInt64
    /// Nearby seeds (1, 2, 3...) give unrelated sequences: the seed is mixed first
    /// (splitmix64's finaliser), and the state is never zero.
    public init(seed: UInt64) {
        state = splitMix64(seed) | 1
    }
    public mutating func next() -> UInt64 {
        state ^= state >> 12; state ^= state << 25; state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }
    /// A number in `range`.
    public mutating func int(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.count))
    }
    /// True with probability `p` (0...1).
    public mutating func chance(_ p: Double) -> Bool {
        Double(next() >> 11) / Double(1 << 53) < p
    }
}

/// The bytes a simulated client sends (direction up) or its backend sends back (down)
/// at offset `k` of connection `id`: different for every connection and offset, so a
/// byte of one connection found in another, or out of place, is recognised.
enum Payload {
    static func byte(_ id: Int, _ k: Int, down: Bool) -> UInt8 {
        var x = UInt64(id) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(k) &* 0xC2B2_AE3D_27D4_EB4F &+ (down ? 0x1656_67B1_9E37_79F9 : 0)
        x ^= x >> 29; x = x &* 0xBF58_476D_1CE4_E5B9; x ^= x >> 32
        return UInt8(truncatingIfNeeded: x)
    }

    /// The first 8 bytes a client sends: a marker and its id.
    static func header(_ id: Int) -> [UInt8] {
        withUnsafeBytes(of: (0x5A00_0000_0000_0000 | UInt64(id)).bigEndian) { Array($0) }
    }

    /// Byte `k` of the upload of client `id` (the header, then payload bytes).
    static func up(_ id: Int, _ k: Int) -> UInt8 { k < 8 ? header(id)[k] : byte(id, k, down: false) }
    static func down(_ id: Int, _ k: Int) -> UInt8 { byte(id, k, down: true) }

    /// The client id in a header, or nil when the 8 bytes are not one.
    static func id(fromHeader bytes: [UInt8]) -> Int? {
        guard bytes.count == 8, bytes[0] == 0x5A else { return nil }
        var value: UInt64 = 0
        for b in bytes { value = value << 8 | UInt64(b) }
        return Int(value & 0x00FF_FFFF_FFFF_FFFF)
    }
}
