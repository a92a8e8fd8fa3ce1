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
//     addresses, transport and TLVs (v2) or the same header (v1);
//   - decodeInbound gives the same answer as decode (same version, command,
//     addresses and length; the same TLVs once copied out of its range);
//   - ProxyHeaderReader.next, fed the input in fragments whose sizes come from
//     the input's last bytes as an engine's peeks would see it, never takes a
//     byte past the header, ends on the header's exact length, and agrees with
//     the one-shot decoder (or refuses a v2 header over its limit);
//   - encodeV2(passing:) of a decoded header's TLV block re-decodes to the
//     TLVs its policy promises.

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
        checkRelay(input, header, consumed)
    }
    checkInboundAgrees(input)
    checkReader(input)
    return 0
}

private func checkInboundAgrees(_ input: UnsafeRawBufferPointer) {
    switch (ProxyHeader.decode(input), ProxyHeader.decodeInbound(input)) {
    case let (.complete(header, consumed), .complete(inbound)):
        precondition(inbound.length == consumed, "decodeInbound length \(inbound.length), decode consumed \(consumed)")
        precondition(inbound.tlvs.lowerBound >= ProxyHeader.v2FixedLength || inbound.tlvs.isEmpty, "TLV range in the fixed part")
        precondition(inbound.tlvs.upperBound == consumed, "TLV range does not end with the header")
        precondition(inbound.materialize(from: input) == header, "decodeInbound and decode disagree")
    case let (.needMore(wanted), .needMore(inboundWanted)):
        precondition(wanted == inboundWanted, "needMore \(wanted) against \(inboundWanted)")
    case let (.invalid(error), .invalid(inboundError)):
        precondition(error == inboundError, "invalid \(error) against \(inboundError)")
    case let (decoded, inbound):
        preconditionFailure("decode gave \(decoded), decodeInbound \(inbound)")
    }
}

/// Limits the engine might configure, chosen by an input byte.
private let readerLimits = [16 + 65_535, 4096, 232, 64, 28, 16, 8]

/// Feeds the input to the reader as peeks of growing length (sizes 0...31
/// from the last 4 input bytes, in turn; two empty peeks in a row become one
/// byte so the stream always ends), taking what it says, as the engine does.
private func checkReader(_ input: UnsafeRawBufferPointer) {
    let count = input.count
    let controls = UnsafeRawBufferPointer(rebasing: input[max(0, count - 4)...])
    let limit = count >= 2 ? readerLimits[Int(input[count - 2]) % readerLimits.count] : readerLimits[0]
    var consumed = 0
    var arrived = 0
    var turn = 0
    var lastWasEmpty = false
    var outcome = ProxyHeaderReader.Step.consume(0)
    while true {
        var size = controls.isEmpty ? 1 : Int(controls[turn % controls.count]) % 32
        turn += 1
        if size == 0 && lastWasEmpty { size = 1 }
        lastWasEmpty = size == 0
        arrived = min(count, arrived + size)
        outcome = ProxyHeaderReader.next(UnsafeRawBufferPointer(rebasing: input[..<arrived]), consumed: consumed, limit: limit)
        if case .consume(let more) = outcome {
            precondition(more == arrived - consumed, "consume(\(more)) with \(arrived - consumed) new bytes")
            consumed += more
            if arrived == count { break }
            continue
        }
        break
    }

    let isV2 = count > 0 && input[0] == 0x0D
    switch ProxyHeader.decode(input) {
    case .complete(let header, let length):
        if isV2 && length > limit {
            checkTooLong(outcome, limit: limit, length: length)
            return
        }
        guard case .complete(length) = outcome else { preconditionFailure("reader gave \(outcome) for a \(length)-byte header") }
        precondition(consumed <= length, "reader took \(consumed) bytes of a \(length)-byte header")
        let exact = UnsafeRawBufferPointer(rebasing: input[..<length])
        guard case .complete(let inbound) = ProxyHeader.decodeInbound(exact), inbound.materialize(from: exact) == header
        else { preconditionFailure("what the reader framed decodes differently") }
    case .needMore(let wanted):
        if isV2 && wanted > limit {
            checkTooLong(outcome, limit: limit, length: wanted)
            return
        }
        guard case .consume = outcome else { preconditionFailure("reader gave \(outcome) for an undecided prefix") }
        precondition(consumed == count, "reader left header bytes of an undecided prefix: \(consumed) of \(count)")
    case .invalid(let error):
        switch outcome {
        case .reject(.invalid(let readerError)):
            precondition(readerError == error, "reader rejected for \(readerError), decode for \(error)")
        case .reject(.tooLong):
            precondition(isV2, "v1 refused as too long")
        default:
            preconditionFailure("reader gave \(outcome) for bytes decode rejects (\(error))")
        }
    }
}

/// A v2 header over the limit is refused as too long, naming a length over
/// the limit and not over the header's (it may be "at least 16" when the
/// limit is below the fixed part).
private func checkTooLong(_ outcome: ProxyHeaderReader.Step, limit: Int, length: Int) {
    guard case .reject(.tooLong(let atLeast, limit)) = outcome, atLeast > limit, atLeast <= length else {
        preconditionFailure("over-limit header (\(length) bytes, limit \(limit)) gave \(outcome)")
    }
}

/// Relays the decoded header's TLV block (empty for v1) with an id and a
/// checksum chosen by input bytes, then checks the policy on the re-decoded
/// header: inbound TLVs in order minus CRC32C, NOOP and (with our id)
/// UNIQUE_ID, then our id, then CRC32C.
private func checkRelay(_ input: UnsafeRawBufferPointer, _ header: DecodedProxyHeader, _ consumed: Int) {
    guard case .complete(let inbound) = ProxyHeader.decodeInbound(input) else { preconditionFailure("decodeInbound disagrees") }
    let block = UnsafeRawBufferPointer(rebasing: input[inbound.tlvs])
    let selector = Int(input[consumed - 1])
    let crc32c = selector & 1 == 1
    let idLength = min(selector % 129, consumed)
    let id = idLength == 0 ? nil : UnsafeRawBufferPointer(rebasing: input[..<idLength])
    let result = ProxyHeader.encodeV2(source: header.source, destination: header.destination,
                                      passing: block, uniqueID: id, crc32c: crc32c, into: scratch)

    var expected = header.tlvs.filter { tlv in
        tlv.type != .crc32c && tlv.type != .noop && !(tlv.type == .uniqueID && id != nil)
    }
    if let id { expected.append(ProxyTLV(type: .uniqueID, value: Array(id))) }
    let addressBytes = header.source == nil ? 0 : (header.source?.unmappedIPv4 != nil && header.destination?.unmappedIPv4 != nil ? 12 : 36)
    let length = addressBytes + expected.reduce(0) { $0 + 3 + $1.value.count } + (crc32c ? 7 : 0)
    guard case .success(let written) = result else {
        precondition(result == .failure(.headerTooLong(length: length)) && length > 65_535, "relay failed: \(result)")
        return
    }
    precondition(written == 16 + length, "relay wrote \(written), expected \(16 + length)")
    guard case .complete(let relayed, written) = ProxyHeader.decode(UnsafeRawBufferPointer(rebasing: scratch[..<written])) else {
        preconditionFailure("relayed header does not decode")
    }
    precondition(relayed.command == .proxy, "relayed command changed")
    precondition(relayed.tlvs.filter { $0.type != .crc32c } == expected, "relayed TLVs break the policy")
    precondition(relayed.tlvs.contains { $0.type == .crc32c } == crc32c, "relayed CRC32C presence wrong")
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
