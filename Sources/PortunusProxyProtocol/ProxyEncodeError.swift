/// Why a PROXY header could not be encoded. Every case is a value, never a
/// trap: the engine can log it and fail the dial.
public enum ProxyEncodeError: Error, Sendable, Hashable {
    /// The output storage holds fewer than `needed` bytes; nothing was
    /// written. Retry with at least `needed` bytes.
    case bufferTooSmall(needed: Int)
    /// One address is IPv4 and the other IPv6 that is not IPv4-mapped, so no
    /// single family (TCP4 or TCP6) describes the pair.
    case familyMismatch
    /// Exactly one of source and destination was given; pass both, or
    /// neither for `UNKNOWN` / `UNSPEC`.
    case missingAddress
    /// A TLV value is longer than its type allows: 65,535 bytes for any TLV,
    /// 128 bytes for `UNIQUE_ID`.
    case tlvTooLong(type: UInt8, length: Int)
    /// A `CRC32C` TLV was passed in `tlvs`; ask for the checksum with
    /// `crc32c: true` instead, so the encoder computes and places it.
    case crc32cSuppliedAsTLV
    /// Addresses and TLVs together exceed the 65,535 bytes the v2 length
    /// field can describe.
    case headerTooLong(length: Int)
    /// The inbound TLV block given to pass on does not parse (the
    /// decoder's reason, offsets within the block); nothing was written.
    case malformedInboundTLVs(ProxyDecodeError)
    /// A `UNIQUE_ID` of zero bytes was given to pass on; the spec's id is
    /// 1 to 128 bytes, and no id is written as `nil`.
    case emptyUniqueID
}
