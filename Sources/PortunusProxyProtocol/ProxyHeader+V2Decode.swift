// Version 2 (binary) decoder, spec section 2.2. Each fixed field is checked as
// soon as it has arrived, so garbage is rejected on the first bytes; the
// address block and TLVs are only read once the whole header (16 + length
// bytes) is present, as the spec requires. Nothing is copied out: the TLVs
// are validated in place and reported as a range.

extension ProxyHeader {
    static func decodeInboundV2(_ bytes: UnsafeRawBufferPointer) -> InboundDecodeResult {
        let signatureMatches = withUnsafeBytes(of: v2Signature) { agreesSoFar(bytes, with: $0) }
        guard signatureMatches else { return .invalid(.badSignature) }

        var command = ProxyCommand.local
        if bytes.count > 12 {
            let versionCommand = bytes[12]
            guard versionCommand >> 4 == ProxyVersion.v2.rawValue else {
                return .invalid(.unsupportedVersion(versionCommand))
            }
            guard let known = ProxyCommand(rawValue: versionCommand & 0x0F) else {
                return .invalid(.unknownCommand(versionCommand))
            }
            command = known
        }
        var family = ProxyAddressFamily.unspec
        var transport = ProxyTransport.unspec
        if bytes.count > 13 {
            switch parseFamilyByte(bytes[13]) {
            case .success(let parsed): (family, transport) = parsed
            case .failure(let error): return .invalid(error)
            }
        }
        guard bytes.count >= v2FixedLength else { return .needMore(atLeast: v2FixedLength) }

        let length = Int(bytes[14]) << 8 | Int(bytes[15])
        // Checked even for LOCAL: the family still fixes where the TLVs start.
        guard length >= family.v2AddressLength else {
            return .invalid(.lengthTooShort(declared: length, required: family.v2AddressLength))
        }
        let total = v2FixedLength + length
        guard bytes.count >= total else { return .needMore(atLeast: total) }
        // From here on only the header is visible, so no parse can stray into
        // the payload that follows it.
        let header = UnsafeRawBufferPointer(rebasing: bytes[..<total])
        let tlvs = (v2FixedLength + family.v2AddressLength)..<total

        switch TLVCursor.validate(header, tlvs) {
        case .success(let crc32cValueOffset?):
            if let error = verifyCRC32C(header, valueOffset: crc32cValueOffset) { return .invalid(error) }
        case .success(nil):
            break
        case .failure(let error):
            return .invalid(error)
        }

        var decoded = InboundProxyHeader(
            version: .v2, command: command, transport: transport, family: family, length: total, tlvs: tlvs
        )
        // LOCAL: "discard the protocol block including the family"; the
        // family is still reported so callers can log what was sent.
        if command == .proxy, family == .inet || family == .inet6 {
            (decoded.source, decoded.destination) = readV2Addresses(header, family)
        }
        return .complete(decoded)
    }

    /// Byte 14: only the combinations the spec lists (0x00, 0x11, 0x12,
    /// 0x21, 0x22, 0x31, 0x32) are accepted; it says receivers must reject
    /// the rest.
    private static func parseFamilyByte(_ byte: UInt8) -> Result<(ProxyAddressFamily, ProxyTransport), ProxyDecodeError> {
        guard let family = ProxyAddressFamily(rawValue: byte >> 4) else {
            return .failure(.unknownAddressFamily(byte))
        }
        guard let transport = ProxyTransport(rawValue: byte & 0x0F),
              (family == .unspec) == (transport == .unspec)
        else { return .failure(.unknownTransport(byte)) }
        return .success((family, transport))
    }

    /// Recomputes the CRC32C over the header with the 4 value bytes taken as
    /// zero (spec 2.2.3) without copying or mutating the input.
    private static func verifyCRC32C(_ header: UnsafeRawBufferPointer, valueOffset: Int) -> ProxyDecodeError? {
        var received: UInt32 = 0
        for index in valueOffset..<(valueOffset + 4) {
            received = received << 8 | UInt32(header[index])
        }
        var crc = CRC32C()
        crc.update(UnsafeRawBufferPointer(rebasing: header[..<valueOffset]))
        crc.update(zeroes: 4)
        crc.update(UnsafeRawBufferPointer(rebasing: header[(valueOffset + 4)...]))
        return crc.value == received ? nil : .crc32cMismatch(received: received, computed: crc.value)
    }

    /// Reads src addr, dst addr, src port, dst port from the address block;
    /// the caller has checked the length covers it.
    private static func readV2Addresses(
        _ header: UnsafeRawBufferPointer,
        _ family: ProxyAddressFamily
    ) -> (ProxyAddress, ProxyAddress) {
        let width = family == .inet ? 4 : 16
        let start = v2FixedLength
        precondition(header.count >= start + 2 * width + 4, "address block shorter than its family")
        let ports = start + 2 * width
        let sourcePort = UInt16(header[ports]) << 8 | UInt16(header[ports + 1])
        let destinationPort = UInt16(header[ports + 2]) << 8 | UInt16(header[ports + 3])
        let sourceOctets = UnsafeRawBufferPointer(rebasing: header[start..<(start + width)])
        let destinationOctets = UnsafeRawBufferPointer(rebasing: header[(start + width)..<ports])
        // The counts match the family, so these initialisers cannot fail.
        guard let source = ProxyAddress(octets: sourceOctets, port: sourcePort),
              let destination = ProxyAddress(octets: destinationOctets, port: destinationPort)
        else { preconditionFailure("address width does not match family") }
        return (source, destination)
    }
}
