/// The 64-bit `user_data` every SQE carries, laid out in one place:
///
/// ```
///  63            32 31        8 7      0
/// +----------------+-----------+--------+
/// |   slot index   | generation|  kind  |
/// +----------------+-----------+--------+
/// ```
/// - `slot`: index of the caller's operation record (connection slab slot, listener, ...).
/// - `generation`: 24 bits, bumped each time the slot is reused, so a late completion
///   for a previous occupant is recognised and dropped.
/// - `kind`: which operation of that record completed (caller-defined, 0...255).
public struct UserData: Equatable, Hashable, Sendable {
    public let rawValue: UInt64

    public static let generationMask: UInt32 = 0x00FF_FFFF

    @inline(__always)
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    @inline(__always)
    public init(slot: UInt32, generation: UInt32, kind: UInt8) {
        rawValue = UInt64(slot) << 32
            | UInt64(generation & Self.generationMask) << 8
            | UInt64(kind)
    }

    @inline(__always) public var slot: UInt32 { UInt32(truncatingIfNeeded: rawValue >> 32) }
    @inline(__always) public var generation: UInt32 {
        UInt32(truncatingIfNeeded: rawValue >> 8) & Self.generationMask
    }
    @inline(__always) public var kind: UInt8 { UInt8(truncatingIfNeeded: rawValue) }
}
