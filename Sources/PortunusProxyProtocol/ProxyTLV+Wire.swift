// TLV block layout shared by the v2 encoders and decoder: [type][len hi][len lo]
// [value...] repeated until the end of the block (spec section 2.2).

extension ProxyTLV {
    /// Bytes of a `CRC32C` TLV on the wire: 3 header bytes and a 4-byte value.
    static let crc32cEncodedLength = 7

    /// Checks caller TLVs before any byte is written and returns their total
    /// wire size, so the encoder can size the header exactly.
    static func encodedLength(of tlvs: [ProxyTLV]) -> Result<Int, ProxyEncodeError> {
        var total = 0
        // Index loops, not `for tlv in tlvs`: unoptimised builds iterate an
        // array of non-trivial elements through a coroutine whose frame is
        // heap-allocated per element (found by Benchmarks/fuzz/alloc-check.sh).
        for index in 0..<tlvs.count {
            let tlv = tlvs[index]
            if tlv.type == .crc32c { return .failure(.crc32cSuppliedAsTLV) }
            let limit = tlv.type == .uniqueID ? maxUniqueIDLength : maxValueLength
            guard tlv.value.count <= limit else {
                return .failure(.tlvTooLong(type: tlv.type.rawValue, length: tlv.value.count))
            }
            total += tlv.encodedLength
        }
        return .success(total)
    }

    /// Writes `tlvs` in order. Lengths were checked by ``encodedLength(of:)``.
    static func write(_ tlvs: [ProxyTLV], to writer: inout ByteWriter) {
        for index in 0..<tlvs.count {
            let tlv = tlvs[index]
            writer.write(tlv.type.rawValue)
            writer.write(bigEndian: UInt16(tlv.value.count))
            tlv.value.withUnsafeBytes { writer.write(raw: $0) }
        }
    }

    /// Copies the TLVs at `range` of a header that ``ProxyHeader/decodeInbound(_:)``
    /// has validated into values (allocates; `decode` and tests use it).
    static func materialize(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> [ProxyTLV] {
        var tlvs: [ProxyTLV] = []
        var cursor = TLVCursor(bytes, range)
        while let step = cursor.next() {
            guard case .success(let entry) = step else { preconditionFailure("TLVs changed after validation") }
            let value = Array(UnsafeRawBufferPointer(rebasing: bytes[entry.value]))
            tlvs.append(ProxyTLV(type: entry.type, value: value))
        }
        return tlvs
    }
}

/// One TLV as it sits in a buffer: its type and where its bytes are.
struct RawTLV {
    var type: ProxyTLVType
    /// The whole TLV, type and length bytes included.
    var wire: Range<Int>
    /// The value bytes only.
    var value: Range<Int>
}

/// Walks a TLV block in place, one entry per ``next()``: the only code that
/// reads TLV framing. The decoder validates and materialises with it, the
/// relaying encoder filters and copies with it, so both agree on what a
/// well-formed block is.
///
/// `range` bounds the walk: for a received header it ends at the end of the
/// header, so no entry can reach into the payload after it. Offsets in errors
/// are indices into `bytes`.
struct TLVCursor {
    let bytes: UnsafeRawBufferPointer
    private var offset: Int
    private let end: Int
    /// Offset of the 4 CRC32C value bytes within `bytes`, once one was seen.
    private(set) var crc32cValueOffset: Int?

    init(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= bytes.count, "TLV block outside its buffer")
        self.bytes = bytes
        self.offset = range.lowerBound
        self.end = range.upperBound
    }

    /// The next entry, `nil` at the end of the block, or the reason the block
    /// is malformed (after which the walk stops).
    mutating func next() -> Result<RawTLV, ProxyDecodeError>? {
        guard offset < end else { return nil }
        let start = offset
        // Any failure ends the walk: nothing after a broken length can be framed.
        offset = end
        guard end - start >= 3 else { return .failure(.tlvOverrun(offset: start)) }
        let type = ProxyTLVType(rawValue: bytes[start])
        let length = Int(bytes[start + 1]) << 8 | Int(bytes[start + 2])
        let valueStart = start + 3
        guard end - valueStart >= length else { return .failure(.tlvOverrun(offset: start)) }
        switch type {
        case .crc32c:
            guard length == 4, crc32cValueOffset == nil else { return .failure(.malformedTLV(type: type.rawValue)) }
            crc32cValueOffset = valueStart
        case .uniqueID:
            guard length <= ProxyTLV.maxUniqueIDLength else { return .failure(.malformedTLV(type: type.rawValue)) }
        default:
            break
        }
        offset = valueStart + length
        return .success(RawTLV(type: type, wire: start..<offset, value: valueStart..<offset))
    }

    /// Walks the whole block; returns where its CRC32C value sits (if any) or
    /// the first reason it is malformed.
    static func validate(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Result<Int?, ProxyDecodeError> {
        var cursor = TLVCursor(bytes, range)
        while let step = cursor.next() {
            if case .failure(let error) = step { return .failure(error) }
        }
        return .success(cursor.crc32cValueOffset)
    }
}
