import PortunusProxyProtocol
import Testing

/// How an engine's read of an inbound header ended.
struct ReadOutcome: Equatable {
    /// Bytes taken off the socket in all.
    var consumed: Int
    /// The reader's last answer; `.consume` when the stream ran out first.
    var last: ProxyHeaderReader.Step
}

/// Drives the reader as the engine does. `arrivals` are how many bytes of
/// `stream` have arrived at each wake-up (non-decreasing); every peek shows all
/// arrived bytes past those taken, and the header area holds the taken ones in
/// front of them, so `seen` is always a prefix of the stream. Fails the test
/// if the reader ever asks for other than what the API promises.
func readHeader(_ stream: [UInt8], arrivals: [Int], limit: Int = 16 + 65_535) -> ReadOutcome {
    var consumed = 0
    var last = ProxyHeaderReader.Step.consume(0)
    for arrived in arrivals {
        last = stream.withUnsafeBytes {
            ProxyHeaderReader.next(UnsafeRawBufferPointer(rebasing: $0[..<arrived]), consumed: consumed, limit: limit)
        }
        switch last {
        case .consume(let count):
            #expect(count == arrived - consumed, "consume(\(count)) with \(arrived - consumed) new bytes")
            consumed += count
        case .complete(let length):
            #expect(length >= consumed && length <= arrived, "complete(\(length)) after \(consumed) of \(arrived)")
            return ReadOutcome(consumed: length, last: last)
        case .reject:
            return ReadOutcome(consumed: consumed, last: last)
        }
    }
    return ReadOutcome(consumed: consumed, last: last)
}

@Suite("Reading a header off a socket")
struct ReaderTests {
    @Test("every split into up to three peeks takes exactly the header, whatever follows it",
          arguments: inboundVectors)
    func everySplit(_ vector: InboundVector) {
        let header = vector.bytes
        for payload in trailingPayloads {
            let stream = header + payload
            for first in 0...stream.count {
                for second in first...stream.count {
                    let outcome = readHeader(stream, arrivals: [first, second, stream.count])
                    guard outcome == ReadOutcome(consumed: header.count, last: .complete(length: header.count)) else {
                        Issue.record("peeks at \(first), \(second), \(stream.count): \(outcome)")
                        return
                    }
                }
            }
            let decoded = stream.withUnsafeBytes { ProxyHeader.decodeInbound(UnsafeRawBufferPointer(rebasing: $0[..<header.count])) }
            #expect(decoded == .complete(vector.header))
        }
    }

    @Test("one byte per peek, with empty peeks between", arguments: inboundVectors)
    func byteByByte(_ vector: InboundVector) {
        let stream = vector.bytes + trailingPayloads[1]
        let arrivals = (0...stream.count).flatMap { [$0, $0] }
        #expect(readHeader(stream, arrivals: arrivals) == ReadOutcome(consumed: vector.bytes.count, last: .complete(length: vector.bytes.count)))
    }

    @Test("random headers, payloads and fragmentations: the engine takes the header and agrees with decode",
          arguments: [21, 22, 23] as [UInt64])
    func randomFragments(seed: UInt64) {
        var generator = HeaderGenerator(AddressGenerator(random: SplitMix64(seed: seed)))
        for _ in 0..<700 {
            guard let header = generator.header() else {
                Issue.record("generator made a header that does not encode")
                continue
            }
            let payload = generator.payload()
            let stream = header + payload
            var cuts = (0..<Int(generator.next() % 6)).map { _ in Int(generator.next() % UInt64(stream.count + 1)) }
            cuts.sort()
            let outcome = readHeader(stream, arrivals: cuts + [stream.count])
            #expect(outcome == ReadOutcome(consumed: header.count, last: .complete(length: header.count)), "\(header)")

            // What the engine decodes after the read is what a one-shot decode
            // of the whole stream gives.
            guard case .complete(let oneShot, let consumed) = ProxyHeader.decode(stream) else {
                Issue.record("one-shot decode failed on \(header)")
                continue
            }
            #expect(consumed == header.count)
            let inbound = header.withUnsafeBytes { bytes -> DecodedProxyHeader? in
                guard case .complete(let decoded) = ProxyHeader.decodeInbound(bytes) else { return nil }
                return decoded.materialize(from: bytes)
            }
            #expect(inbound == oneShot)
        }
    }

    static let rejections: [Named<([UInt8], Int, ProxyHeaderReader.Step)>] = [
        Named("bad signature on the first byte", (ascii("G"), 4096, .reject(.invalid(.badSignature)))),
        Named("TLS hello on the first byte", ([0x16], 4096, .reject(.invalid(.badSignature)))),
        Named("v1 signature wrong on byte 5", (ascii("PROXZ"), 4096, .reject(.invalid(.badSignature)))),
        Named("v2 signature wrong on byte 4", (hex("0D0A0D0B"), 4096, .reject(.invalid(.badSignature)))),
        Named("v1 with no CRLF by 107 bytes",
              (ascii("PROXY UNKNOWN " + String(repeating: "x", count: 93)), 4096, .reject(.invalid(.missingCRLF)))),
        Named("v1 with a lone LF", (ascii("PROXY TCP4 1.2\n"), 4096, .reject(.invalid(.strayLineBreak)))),
        Named("v1 complete but malformed", (ascii("PROXY TCP4 1.2.3.4 5.6.7.8 1 02\r\n"), 4096, .reject(.invalid(.badPort)))),
        Named("v2 version 1, before the family arrives",
              (hex("\(signatureHex) 11"), 4096, .reject(.invalid(.unsupportedVersion(0x11))))),
        Named("v2 command 2", (hex("\(signatureHex) 22"), 4096, .reject(.invalid(.unknownCommand(0x22))))),
        Named("v2 family 4, before the length arrives",
              (hex("\(signatureHex) 21 41"), 4096, .reject(.invalid(.unknownAddressFamily(0x41))))),
        Named("v2 length over the limit, as soon as the length arrives",
              (hex("\(signatureHex) 21 11 0100"), 64, .reject(.tooLong(atLeast: 272, limit: 64)))),
        Named("v2 one byte over the limit, as soon as the length arrives",
              (hex("\(signatureHex) 21 11 000C"), 27, .reject(.tooLong(atLeast: 28, limit: 27)))),
        Named("v2 under a limit shorter than the fixed part",
              (hex("0D"), 8, .reject(.tooLong(atLeast: 16, limit: 8)))),
        Named("v2 length shorter than its address block",
              (hex("\(signatureHex) 21 11 000B"), 4096, .reject(.invalid(.lengthTooShort(declared: 11, required: 12))))),
        Named("v2 complete with a TLV that overruns",
              (hex("\(signatureHex) 21 11 000F 01020304 05060708 3039 0050 04 0005"), 4096, .reject(.invalid(.tlvOverrun(offset: 28))))),
        Named("v2 complete with a wrong CRC32C",
              (hex("\(signatureHex) 21 11 0013 01020304 05060708 3039 0050 03 0004 5AF116B7"), 4096,
               .reject(.invalid(.crc32cMismatch(received: 0x5AF1_16B7, computed: 0x5AF1_16B6))))),
    ]

    @Test("rejects as early as the bytes allow", arguments: rejections)
    func rejects(_ testCase: Named<([UInt8], Int, ProxyHeaderReader.Step)>) {
        let (bytes, limit, expected) = testCase.value
        #expect(bytes.withUnsafeBytes { ProxyHeaderReader.next($0, consumed: 0, limit: limit) } == expected)
        // One byte fewer is not yet enough to tell (so "as early as" holds).
        let shorter = Array(bytes.dropLast())
        let before = shorter.withUnsafeBytes { ProxyHeaderReader.next($0, consumed: 0, limit: limit) }
        #expect(before == .consume(shorter.count), "one byte earlier: \(before)")
    }

    static let otherSteps: [Named<([UInt8], Int, Int, ProxyHeaderReader.Step)>] = [
        Named("nothing yet", ([], 0, 4096, .consume(0))),
        Named("v1 at 106 bytes without CRLF", (ascii("PROXY UNKNOWN " + String(repeating: "x", count: 92)), 0, 4096, .consume(106))),
        Named("v1 ending in CR", (ascii("PROXY UNKNOWN\r"), 5, 4096, .consume(9))),
        Named("v1 under a tiny limit (v1 always fits)", (ascii("PROXY TCP4 "), 0, 8, .consume(11))),
        Named("v2 length within the limit, body not all there",
              (hex("\(signatureHex) 21 11 0100 01020304"), 16, 272, .consume(4))),
        Named("v2 nothing new since the last take", (hex("\(signatureHex) 21 11 000C 0102"), 18, 4096, .consume(0))),
        Named("v2 complete after taking part of it",
              (hex("\(signatureHex) 21 11 000C 01020304 05060708 3039 0050") + ascii("GET"), 20, 28, .complete(length: 28))),
        Named("v2 over the limit stays refused as its body arrives",
              (hex("\(signatureHex) 21 11 0100 01020304 05060708 3039 0050 E0"), 0, 64, .reject(.tooLong(atLeast: 272, limit: 64)))),
        Named("v2 complete, one byte over the limit",
              (hex("\(signatureHex) 21 11 000C 01020304 05060708 3039 0050"), 0, 27, .reject(.tooLong(atLeast: 28, limit: 27)))),
        Named("v2 complete and all taken already",
              (hex("\(signatureHex) 20 00 0000") + ascii("G"), 16, 16, .complete(length: 16))),
    ]

    @Test("asks for exactly the new header bytes while undecided, and keeps refusing", arguments: otherSteps)
    func stepsWhileUndecided(_ testCase: Named<([UInt8], Int, Int, ProxyHeaderReader.Step)>) {
        let (bytes, consumed, limit, expected) = testCase.value
        #expect(bytes.withUnsafeBytes { ProxyHeaderReader.next($0, consumed: consumed, limit: limit) } == expected)
    }

    @Test("a header exactly at the limit is accepted")
    func atLimit() {
        let bytes = inboundVectors.first { $0.name.hasPrefix("v2 TCP4 from GCP") }!.bytes
        let step = bytes.withUnsafeBytes { ProxyHeaderReader.next($0, consumed: 0, limit: bytes.count) }
        #expect(step == .complete(length: bytes.count))
    }
}

/// Random valid headers of every form the reader may meet: v1 and v2 from
/// the encoders (TLVs and CRC32C included), v2 from the relaying encoder, and
/// LOCAL; payloads that sometimes look like another header.
struct HeaderGenerator {
    var addresses: AddressGenerator

    init(_ addresses: AddressGenerator) { self.addresses = addresses }

    mutating func next() -> UInt64 { addresses.random.next() }

    mutating func header() -> [UInt8]? {
        let (pair, _) = addresses.pair()
        switch next() % 6 {
        case 0:
            return ProxyHeader.encodeV1(source: pair.0, destination: pair.1).value
        case 1:
            return ProxyHeader.encodeV1(source: nil, destination: nil).value
        case 2:
            return ProxyHeader.encodeV2(command: .local, source: nil, destination: nil, crc32c: next() % 2 == 0).value
        case 3, 4:
            let transport: ProxyTransport = next() % 2 == 0 ? .stream : .dgram
            return ProxyHeader.encodeV2(transport: transport, source: pair.0, destination: pair.1,
                                        tlvs: addresses.tlvs(), crc32c: next() % 2 == 0).value
        default:
            var block: [UInt8] = []
            for tlv in addresses.tlvs() {
                block += [tlv.type.rawValue, UInt8(tlv.value.count >> 8), UInt8(tlv.value.count & 0xFF)] + tlv.value
            }
            let id: [UInt8]? = next() % 2 == 0 ? nil : (0..<Int(1 + next() % 128)).map { _ in UInt8(truncatingIfNeeded: next()) }
            return ProxyHeader.encodeV2(source: pair.0, destination: pair.1, passing: block, uniqueID: id,
                                        crc32c: next() % 2 == 0).value
        }
    }

    mutating func payload() -> [UInt8] {
        let random = (0..<Int(next() % 48)).map { _ in UInt8(truncatingIfNeeded: next()) }
        switch next() % 3 {
        case 0: return random
        case 1: return trailingPayloads[Int(next() % UInt64(trailingPayloads.count))] + random
        default: return (header() ?? []) + random
        }
    }
}
