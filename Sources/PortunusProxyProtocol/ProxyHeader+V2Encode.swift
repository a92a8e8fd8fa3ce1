// Version 2 (binary) encoder, spec section 2.2:
//   signature(12) | ver<<4|cmd (1) | family<<4|transport (1) | length BE (2)
//   | address block | TLVs
// The address block is src addr, dst addr, src port, dst port, all big-endian:
// 12 bytes for IPv4 (28-byte header), 36 for IPv6 (52-byte header).

extension ProxyHeader {
    /// Writes a v2 header into `buffer` and returns its length in bytes.
    ///
    /// - `command: .local` (a health check), `transport: .unspec`, or both
    ///   addresses `nil` produce family/protocol `UNSPEC` (`0x00`) with no
    ///   address block; any addresses given are then ignored, as the spec
    ///   tells senders to do for LOCAL.
    /// - Otherwise the pair follows the same family rule as v1 (IPv4-mapped
    ///   pairs go as INET), and `transport` picks STREAM (TCP) or DGRAM (UDP).
    /// - `tlvs` are written in order after the addresses. With `crc32c: true`
    ///   a `CRC32C` TLV is appended last and filled with the checksum of the
    ///   whole header (computed with that field zeroed, per spec 2.2.3).
    ///
    /// Allocates nothing (passing no TLVs costs no array storage). On any
    /// failure nothing has been written; `.bufferTooSmall(needed:)` gives the
    /// exact size to retry with.
    public static func encodeV2(
        command: ProxyCommand = .proxy,
        transport: ProxyTransport = .stream,
        source: ProxyAddress?,
        destination: ProxyAddress?,
        tlvs: [ProxyTLV] = [],
        crc32c: Bool = false,
        into buffer: UnsafeMutableRawBufferPointer
    ) -> Result<Int, ProxyEncodeError> {
        let pair: ResolvedPair
        if command == .local || transport == .unspec {
            pair = .none
        } else {
            switch resolvePair(source, destination) {
            case .success(let resolved): pair = resolved
            case .failure(let error): return .failure(error)
            }
        }
        let tlvLength: Int
        switch ProxyTLV.encodedLength(of: tlvs) {
        case .success(let length): tlvLength = length
        case .failure(let error): return .failure(error)
        }
        return writeV2(
            command: command, transport: transport, pair: pair, tlvLength: tlvLength, crc32c: crc32c, into: buffer
        ) { ProxyTLV.write(tlvs, to: &$0) }
    }

    /// The frame every v2 encoder writes: sizes the header, fails before
    /// writing a byte when it cannot fit, then writes the fixed part, the
    /// addresses, the `tlvLength` bytes `writeTLVs` supplies and, with
    /// `crc32c`, the checksum TLV last, filled in over the finished header.
    static func writeV2(
        command: ProxyCommand,
        transport: ProxyTransport,
        pair: ResolvedPair,
        tlvLength: Int,
        crc32c: Bool,
        into buffer: UnsafeMutableRawBufferPointer,
        writeTLVs: (inout ByteWriter) -> Void
    ) -> Result<Int, ProxyEncodeError> {
        let family = v2Family(of: pair)
        let length = family.v2AddressLength + tlvLength + (crc32c ? ProxyTLV.crc32cEncodedLength : 0)
        guard length <= Int(UInt16.max) else { return .failure(.headerTooLong(length: length)) }
        let total = v2FixedLength + length
        guard buffer.count >= total else { return .failure(.bufferTooSmall(needed: total)) }

        var writer = ByteWriter(buffer)
        withUnsafeBytes(of: v2Signature) { writer.write(raw: $0) }
        writer.write(ProxyVersion.v2.rawValue << 4 | command.rawValue)
        // UNSPEC family goes with UNSPEC protocol: the spec lists only 0x00
        // for "no addresses", and receivers must reject the other mixes.
        writer.write(family.rawValue << 4 | (family == .unspec ? 0 : transport.rawValue))
        writer.write(bigEndian: UInt16(length))
        writeV2Addresses(pair, to: &writer)
        writeTLVs(&writer)
        if crc32c {
            writer.write(ProxyTLVType.crc32c.rawValue)
            writer.write(bigEndian: UInt16(4))
            writer.write(bigEndian: UInt32(0))
        }
        precondition(writer.offset == total, "v2 header size mismatch")

        if crc32c {
            let header = UnsafeMutableRawBufferPointer(rebasing: buffer[..<total])
            let checksum = CRC32C.checksum(UnsafeRawBufferPointer(header))
            var tail = ByteWriter(UnsafeMutableRawBufferPointer(rebasing: header[(total - 4)...]))
            tail.write(bigEndian: checksum)
        }
        return .success(total)
    }

    /// Encodes a v2 header into a new array (tests and tools; the engine
    /// uses the allocation-free `into:` form).
    public static func encodeV2(
        command: ProxyCommand = .proxy,
        transport: ProxyTransport = .stream,
        source: ProxyAddress?,
        destination: ProxyAddress?,
        tlvs: [ProxyTLV] = [],
        crc32c: Bool = false
    ) -> Result<[UInt8], ProxyEncodeError> {
        encodedBytes {
            encodeV2(
                command: command, transport: transport, source: source, destination: destination,
                tlvs: tlvs, crc32c: crc32c, into: $0
            )
        }
    }

    private static func v2Family(of pair: ResolvedPair) -> ProxyAddressFamily {
        switch pair {
        case .none: return .unspec
        case .inet: return .inet
        case .inet6: return .inet6
        }
    }

    private static func writeV2Addresses(_ pair: ResolvedPair, to writer: inout ByteWriter) {
        let source: ProxyAddress
        let destination: ProxyAddress
        switch pair {
        case .none:
            return
        case let .inet(from, to), let .inet6(from, to):
            (source, destination) = (from, to)
        }
        writeOctets(source, to: &writer)
        writeOctets(destination, to: &writer)
        writer.write(bigEndian: source.port)
        writer.write(bigEndian: destination.port)
    }

    /// Network-order octets straight from the inline words: 4 for IPv4,
    /// 16 for IPv6.
    private static func writeOctets(_ address: ProxyAddress, to writer: inout ByteWriter) {
        switch address.family {
        case .ipv4:
            writer.write(bigEndian: UInt32(truncatingIfNeeded: address.low))
        case .ipv6:
            writer.write(bigEndian: address.high)
            writer.write(bigEndian: address.low)
        }
    }
}
