// Version 2 encoder for a relayed connection: the header the engine sends
// each target when its own clients arrive with a PROXY header from a load
// balancer. The inbound TLV block is copied straight from the bytes it came
// in, filtered by one rule, so relaying costs no allocation and no parse
// beyond the walk that checks it.

extension ProxyHeader {
    /// Writes a v2 PROXY header over STREAM into `buffer` that carries the
    /// inbound header's TLVs on, and returns its length in bytes.
    ///
    /// - `source`/`destination`: the real client and the address it reached,
    ///   with the family rules of ``encodeV2(command:transport:source:destination:tlvs:crc32c:into:)``.
    ///   Both `nil` writes a PROXY command with family UNSPEC (byte 0x00) and
    ///   no address block, for the case where the engine has no addresses;
    ///   the backend then uses the connection's own endpoints.
    /// - `inboundTLVs`: a raw TLV block as received, for example
    ///   `bytes[header.tlvs]` of an ``InboundProxyHeader``; may be empty.
    ///   It must not overlap `buffer`.
    /// - `uniqueID`: our per-connection id, 1 to 128 bytes, or `nil`.
    /// - `crc32c`: append a `CRC32C` TLV computed over the new header.
    ///
    /// What is passed on: every inbound TLV unchanged and in order, except
    /// - `CRC32C`: it covered the old header; a new one is written only
    ///   when `crc32c` is true;
    /// - `NOOP`: padding, meaningless once the header is rebuilt;
    /// - `UNIQUE_ID`, only when `uniqueID` is given: ours replaces it, since
    ///   one id per hop is what the backend logs.
    /// Then our `UNIQUE_ID` (if given), then `CRC32C` last (if asked), its
    /// checksum taken over the whole header with that field zeroed.
    ///
    /// Allocates nothing. On any failure nothing has been written:
    /// `.malformedInboundTLVs` when the block does not parse, `.emptyUniqueID`
    /// or `.tlvTooLong` for an id outside 1...128 bytes, `.headerTooLong` past
    /// 65,535 bytes of length field, `.bufferTooSmall(needed:)` with the exact
    /// size to retry with.
    public static func encodeV2(
        source: ProxyAddress?,
        destination: ProxyAddress?,
        passing inboundTLVs: UnsafeRawBufferPointer,
        uniqueID: UnsafeRawBufferPointer?,
        crc32c: Bool,
        into buffer: UnsafeMutableRawBufferPointer
    ) -> Result<Int, ProxyEncodeError> {
        precondition(!overlaps(inboundTLVs, buffer), "inbound TLVs overlap the output buffer")
        let pair: ResolvedPair
        switch resolvePair(source, destination) {
        case .success(let resolved): pair = resolved
        case .failure(let error): return .failure(error)
        }
        var ownLength = 0
        if let uniqueID {
            guard !uniqueID.isEmpty else { return .failure(.emptyUniqueID) }
            guard uniqueID.count <= ProxyTLV.maxUniqueIDLength else {
                return .failure(.tlvTooLong(type: ProxyTLVType.uniqueID.rawValue, length: uniqueID.count))
            }
            ownLength = 3 + uniqueID.count
        }
        let replacing = uniqueID != nil
        let passedLength: Int
        switch lengthPassedOn(inboundTLVs, replacingUniqueID: replacing) {
        case .success(let length): passedLength = length
        case .failure(let error): return .failure(error)
        }
        return writeV2(
            command: .proxy, transport: .stream, pair: pair,
            tlvLength: passedLength + ownLength, crc32c: crc32c, into: buffer
        ) { writer in
            writePassedOn(inboundTLVs, replacingUniqueID: replacing, to: &writer)
            if let uniqueID {
                writer.write(ProxyTLVType.uniqueID.rawValue)
                writer.write(bigEndian: UInt16(uniqueID.count))
                writer.write(raw: uniqueID)
            }
        }
    }

    /// The relaying encoder into a new array (tests and tools; the engine
    /// uses the allocation-free `into:` form).
    public static func encodeV2(
        source: ProxyAddress?,
        destination: ProxyAddress?,
        passing inboundTLVs: [UInt8],
        uniqueID: [UInt8]?,
        crc32c: Bool
    ) -> Result<[UInt8], ProxyEncodeError> {
        inboundTLVs.withUnsafeBytes { block in
            func encode(_ id: UnsafeRawBufferPointer?) -> Result<[UInt8], ProxyEncodeError> {
                encodedBytes {
                    encodeV2(source: source, destination: destination, passing: block, uniqueID: id, crc32c: crc32c, into: $0)
                }
            }
            guard let uniqueID else { return encode(nil) }
            return uniqueID.withUnsafeBytes { encode($0) }
        }
    }

    /// The pass-on rule of the relaying `encodeV2`, in one place.
    private static func passesOn(_ type: ProxyTLVType, replacingUniqueID: Bool) -> Bool {
        switch type {
        case .crc32c, .noop: return false
        case .uniqueID: return !replacingUniqueID
        default: return true
        }
    }

    /// Checks the whole inbound block and returns the bytes that pass on.
    private static func lengthPassedOn(_ block: UnsafeRawBufferPointer, replacingUniqueID: Bool) -> Result<Int, ProxyEncodeError> {
        var total = 0
        var cursor = TLVCursor(block, 0..<block.count)
        while let step = cursor.next() {
            switch step {
            case .success(let tlv):
                if passesOn(tlv.type, replacingUniqueID: replacingUniqueID) { total += tlv.wire.count }
            case .failure(let error):
                return .failure(.malformedInboundTLVs(error))
            }
        }
        return .success(total)
    }

    /// Copies the TLVs that pass on, each whole (type, length and value).
    /// ``lengthPassedOn(_:replacingUniqueID:)`` has validated the block.
    private static func writePassedOn(_ block: UnsafeRawBufferPointer, replacingUniqueID: Bool, to writer: inout ByteWriter) {
        var cursor = TLVCursor(block, 0..<block.count)
        while let step = cursor.next() {
            guard case .success(let tlv) = step else { preconditionFailure("inbound TLVs changed while encoding") }
            if passesOn(tlv.type, replacingUniqueID: replacingUniqueID) {
                writer.write(raw: UnsafeRawBufferPointer(rebasing: block[tlv.wire]))
            }
        }
    }

    private static func overlaps(_ block: UnsafeRawBufferPointer, _ buffer: UnsafeMutableRawBufferPointer) -> Bool {
        guard let blockStart = block.baseAddress, let bufferStart = buffer.baseAddress,
              !block.isEmpty, !buffer.isEmpty
        else { return false }
        let bufferRaw = UnsafeRawPointer(bufferStart)
        return blockStart < bufferRaw + buffer.count && bufferRaw < blockStart + block.count
    }
}
