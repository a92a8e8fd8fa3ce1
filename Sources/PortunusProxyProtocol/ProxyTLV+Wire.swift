// TLV block layout shared by the v2 encoder and decoder: [type][len hi][len lo]
// [value...] repeated until the end of the header (spec section 2.2).

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

    /// The TLVs of a complete v2 header plus where the CRC32C value sits.
    struct ParsedBlock {
        var tlvs: [ProxyTLV] = []
        /// Offset of the 4 CRC32C value bytes within the header, if present.
        var crc32cValueOffset: Int?
    }

    /// Parses `header[start...]` as TLVs. `header` is exactly the v2 header
    /// (16 + length bytes), so "past the end" means past the header, never
    /// into payload that follows it.
    static func parseBlock(_ header: UnsafeRawBufferPointer, from start: Int) -> Result<ParsedBlock, ProxyDecodeError> {
        var block = ParsedBlock()
        var offset = start
        while offset < header.count {
            guard header.count - offset >= 3 else { return .failure(.tlvOverrun(offset: offset)) }
            let type = ProxyTLVType(rawValue: header[offset])
            let length = Int(header[offset + 1]) << 8 | Int(header[offset + 2])
            let valueStart = offset + 3
            guard header.count - valueStart >= length else { return .failure(.tlvOverrun(offset: offset)) }
            switch type {
            case .crc32c:
                guard length == 4, block.crc32cValueOffset == nil else {
                    return .failure(.malformedTLV(type: type.rawValue))
                }
                block.crc32cValueOffset = valueStart
            case .uniqueID:
                guard length <= maxUniqueIDLength else { return .failure(.malformedTLV(type: type.rawValue)) }
            default:
                break
            }
            let value = Array(UnsafeRawBufferPointer(rebasing: header[valueStart..<(valueStart + length)]))
            block.tlvs.append(ProxyTLV(type: type, value: value))
            offset = valueStart + length
        }
        return .success(block)
    }
}
