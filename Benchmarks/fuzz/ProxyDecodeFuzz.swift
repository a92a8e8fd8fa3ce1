// libFuzzer entry point for the PROXY protocol codec.
//
// Build and run with `Benchmarks/fuzz/run.sh [SECONDS]`: it compiles this file
// together with Sources/PortunusProxyProtocol/*.swift as one module under
// `-sanitize=fuzzer,address`, so ASan sees every byte the decoder touches
// (libFuzzer hands each input over in an exactly-sized heap block, so one
// byte of over-read is a report) and any failed precondition below is a crash
// libFuzzer saves as a reproducer.
//
// Invariants checked for every input:
//   - .needMore asks for more bytes than it was given, and v1 never more
//     than 107;
//   - .complete consumed 1...count bytes (v1 at most 107), the header does
//     not depend on the bytes after it, and every shorter prefix needs more;
//   - a decoded header re-encodes, and the re-encoding decodes to the same
//     addresses, transport and TLVs (v2) or the same header (v1).

// Scratch for re-encoding: the largest v2 header is 16 + 65,535 bytes.
// Allocated once so the fuzz loop measures the codec, not malloc.
private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 16 + 65_535, alignment: 16)

@_cdecl("LLVMFuzzerTestOneInput")
public func proxyDecodeFuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    switch ProxyHeader.decode(input) {
    case .invalid:
        break
    case .needMore(let atLeast):
        precondition(atLeast > size, "needMore(\(atLeast)) with \(size) bytes in hand")
        if input.first == UInt8(ascii: "P") {
            precondition(atLeast <= ProxyHeader.v1MaxLength, "v1 asked for more than 107 bytes")
        }
    case .complete(let header, let consumed):
        checkComplete(input, header, consumed)
    }
    return 0
}

private func checkComplete(_ input: UnsafeRawBufferPointer, _ header: DecodedProxyHeader, _ consumed: Int) {
    precondition(consumed > 0 && consumed <= input.count, "consumed \(consumed) of \(input.count)")
    if header.version == .v1 {
        precondition(consumed <= ProxyHeader.v1MaxLength, "v1 consumed \(consumed)")
        precondition(header.tlvs.isEmpty, "v1 with TLVs")
    }
    precondition((header.source == nil) == (header.destination == nil), "half an address pair")

    let exact = UnsafeRawBufferPointer(rebasing: input[..<consumed])
    precondition(ProxyHeader.decode(exact) == .complete(header, consumed: consumed), "result depends on trailing bytes")
    // Proper prefixes must all need more; checking the longest and the
    // 16-byte v2 boundary keeps each run cheap while still covering the
    // "last byte missing" and "fixed part only" cases.
    for length in [consumed - 1, min(consumed - 1, ProxyHeader.v2FixedLength)] {
        guard case .needMore = ProxyHeader.decode(UnsafeRawBufferPointer(rebasing: input[..<length])) else {
            preconditionFailure("prefix of \(length) bytes of a valid header did not need more")
        }
    }

    switch header.version {
    case .v1: checkV1ReEncode(header)
    case .v2: checkV2ReEncode(header)
    }
}

private func checkV1ReEncode(_ header: DecodedProxyHeader) {
    let encoded = ProxyHeader.encodeV1(source: header.source, destination: header.destination, into: scratch)
    guard case .success(let length) = encoded else { preconditionFailure("v1 re-encode failed: \(encoded)") }
    let again = ProxyHeader.decode(UnsafeRawBufferPointer(rebasing: scratch[..<length]))
    // TCP6 carrying two mapped addresses legitimately comes back as TCP4.
    if let source = header.source, let destination = header.destination,
       source.isIPv4Mapped, destination.isIPv4Mapped {
        guard case .complete(let decoded, _) = again, decoded.family == .inet,
              decoded.source == source.unmappedIPv4, decoded.destination == destination.unmappedIPv4
        else { preconditionFailure("mapped v1 pair did not come back as TCP4") }
        return
    }
    precondition(again == .complete(header, consumed: length), "v1 round trip changed the header")
}

private func checkV2ReEncode(_ header: DecodedProxyHeader) {
    // UNIX paths are not representable in ProxyAddress; such headers
    // re-encode as UNSPEC, so compare only what survives.
    let withoutCRC = header.tlvs.filter { $0.type != .crc32c }
    let hadCRC = withoutCRC.count != header.tlvs.count
    let encoded = ProxyHeader.encodeV2(
        command: header.command,
        transport: header.transport == .unspec ? .stream : header.transport,
        source: header.source, destination: header.destination,
        tlvs: withoutCRC, crc32c: hadCRC, into: scratch
    )
    guard case .success(let length) = encoded else { preconditionFailure("v2 re-encode failed: \(encoded)") }
    guard case .complete(let decoded, let consumed) = ProxyHeader.decode(UnsafeRawBufferPointer(rebasing: scratch[..<length]))
    else { preconditionFailure("v2 re-encoding does not decode") }
    precondition(consumed == length, "v2 re-encoding consumed \(consumed) of \(length)")
    precondition(decoded.command == header.command, "command changed")
    precondition(decoded.tlvs.filter { $0.type != .crc32c } == withoutCRC, "TLVs changed")
    precondition(decoded.tlvs.contains { $0.type == .crc32c } == hadCRC, "CRC32C presence changed")
    guard let source = header.source, let destination = header.destination else { return }
    let mappedPair = source.isIPv4Mapped && destination.isIPv4Mapped
    precondition(decoded.transport == header.transport, "transport changed")
    precondition(decoded.source == (mappedPair ? source.unmappedIPv4 : source), "source changed")
    precondition(decoded.destination == (mappedPair ? destination.unmappedIPv4 : destination), "destination changed")
}
