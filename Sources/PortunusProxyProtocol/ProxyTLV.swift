/// The type byte of a v2 TLV. A struct rather than an enum because any byte
/// may appear on the wire (custom and experimental ranges included) and the
/// decoder hands unknown types through untouched.
public struct ProxyTLVType: RawRepresentable, Sendable, Hashable {
    /// The byte on the wire.
    public var rawValue: UInt8

    /// Wraps a type byte.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// `PP2_TYPE_ALPN`: the negotiated application protocol.
    public static let alpn = ProxyTLVType(rawValue: 0x01)
    /// `PP2_TYPE_AUTHORITY`: the host name the client asked for (TLS SNI), UTF-8.
    public static let authority = ProxyTLVType(rawValue: 0x02)
    /// `PP2_TYPE_CRC32C`: big-endian CRC32C of the whole header, computed with
    /// this field zeroed. Encoders add it through `crc32c: true`.
    public static let crc32c = ProxyTLVType(rawValue: 0x03)
    /// `PP2_TYPE_NOOP`: padding the receiver ignores.
    public static let noop = ProxyTLVType(rawValue: 0x04)
    /// `PP2_TYPE_UNIQUE_ID`: an opaque connection id of at most 128 bytes.
    public static let uniqueID = ProxyTLVType(rawValue: 0x05)
    /// `PP2_TYPE_SSL`: client TLS details with nested sub-TLVs (passed through raw).
    public static let ssl = ProxyTLVType(rawValue: 0x20)
    /// `PP2_TYPE_NETNS`: the network namespace name.
    public static let netns = ProxyTLVType(rawValue: 0x30)
}

/// One v2 Type-Length-Value extension: a type byte and up to 65,535 value
/// bytes.
public struct ProxyTLV: Sendable, Hashable {
    /// The spec caps `UNIQUE_ID` values at 128 bytes (section 2.2.5).
    public static let maxUniqueIDLength = 128
    /// The 16-bit length field caps every value at this many bytes.
    public static let maxValueLength = Int(UInt16.max)

    /// What the value means.
    public var type: ProxyTLVType
    /// The value bytes, exactly as on the wire.
    public var value: [UInt8]

    /// A TLV of any type.
    public init(type: ProxyTLVType, value: [UInt8]) {
        self.type = type
        self.value = value
    }

    /// An `AUTHORITY` TLV carrying `host` as UTF-8.
    public static func authority(_ host: String) -> ProxyTLV {
        ProxyTLV(type: .authority, value: Array(host.utf8))
    }

    /// A `UNIQUE_ID` TLV (at most 128 bytes, or encoding fails with
    /// `.tlvTooLong`).
    public static func uniqueID(_ id: [UInt8]) -> ProxyTLV {
        ProxyTLV(type: .uniqueID, value: id)
    }

    /// A `NOOP` TLV with `count` zero bytes of padding (3 more bytes on the
    /// wire for its own type and length).
    public static func noop(count: Int) -> ProxyTLV {
        ProxyTLV(type: .noop, value: Array(repeating: 0, count: count))
    }

    /// The wire size: type byte, 16-bit length, value.
    var encodedLength: Int { 3 + value.count }
}
