import PortunusProxyProtocol
import Testing

@Suite("Decoding valid headers")
struct DecodeTests {
    @Test("decodes every hand-written vector", arguments: v1Vectors + v2Vectors)
    func decodesVector(_ vector: Vector) {
        #expect(ProxyHeader.decode(vector.bytes) == .complete(vector.decoded, consumed: vector.bytes.count))
    }

    @Test("accepts valid forms this module never emits", arguments: acceptOnlyVectors)
    func acceptsForeignForms(_ vector: Named<([UInt8], DecodedProxyHeader)>) {
        let (bytes, expected) = vector.value
        #expect(ProxyHeader.decode(bytes) == .complete(expected, consumed: bytes.count))
    }

    @Test("stops at the end of the header and leaves the payload", arguments: allValidInputs)
    func leavesPayload(_ input: Named<[UInt8]>) {
        let payload = ascii("GET / HTTP/1.1\r\nHost: a\r\n\r\n") + [0x0D, 0x0A, 0x00]
        guard case .complete(_, let consumed) = ProxyHeader.decode(input.value + payload) else {
            Issue.record("did not decode with payload behind it")
            return
        }
        #expect(consumed == input.value.count)
    }

    @Test("reads only the bytes it is given, from a slice in the middle of a larger buffer",
          arguments: allValidInputs)
    func decodesFromSlice(_ input: Named<[UInt8]>) {
        let surrounded = [0xEE, 0xEE] + input.value + [0xEE]
        let slice = surrounded[2..<(2 + input.value.count)]
        guard case .complete(_, let consumed) = ProxyHeader.decode(slice) else {
            Issue.record("slice did not decode")
            return
        }
        #expect(consumed == input.value.count)
    }

    @Test("non-contiguous collections decode the same", arguments: allValidInputs)
    func decodesNonContiguous(_ input: Named<[UInt8]>) {
        let lazy = input.value.lazy.map { $0 }
        #expect(ProxyHeader.decode(lazy) == ProxyHeader.decode(input.value))
    }
}

@Suite("Truncated input")
struct TruncationTests {
    @Test("every proper prefix of every valid header needs more, never invalid", arguments: allValidInputs)
    func everyPrefixNeedsMore(_ input: Named<[UInt8]>) {
        let bytes = input.value
        for length in 0..<bytes.count {
            let result = ProxyHeader.decode(bytes[..<length])
            guard case .needMore(let atLeast) = result else {
                Issue.record("prefix of \(length) bytes gave \(result)")
                continue
            }
            // atLeast is a total count: more than we have, never beyond the
            // real header (a bound the caller may rely on to size reads).
            #expect(atLeast > length, "prefix \(length)")
            #expect(atLeast <= bytes.count, "prefix \(length) asked for \(atLeast)")
        }
    }

    @Test("v2 asks for the fixed part, then for exactly 16 + length")
    func v2NeedMoreIsExact() {
        let bytes = v2Vectors[0].bytes
        #expect(ProxyHeader.decode(bytes[..<3]) == .needMore(atLeast: 16))
        #expect(ProxyHeader.decode(bytes[..<16]) == .needMore(atLeast: 28))
        #expect(ProxyHeader.decode(bytes[..<27]) == .needMore(atLeast: 28))
    }

    @Test("empty input needs at least the shortest header")
    func emptyInput() {
        #expect(ProxyHeader.decode([UInt8]()) == .needMore(atLeast: 15))
    }
}

@Suite("Malformed input")
struct MalformedTests {
    static let v1Cases: [Named<(String, ProxyDecodeError)>] = [
        Named("not PROXY", ("GET / HTTP/1.1\r\n", .badSignature)),
        Named("PROXZ", ("PROXZ TCP4 1.2.3.4 5.6.7.8 1 2\r\n", .badSignature)),
        Named("PROXY without space", ("PROXY\r\n", .badSignature)),
        Named("lower-case proxy", ("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", .badSignature)),
        Named("TCP5", ("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", .unknownProtocol)),
        Named("lower-case tcp4", ("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", .unknownProtocol)),
        Named("UDP4", ("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", .unknownProtocol)),
        Named("UNKNOWN glued", ("PROXY UNKNOWNX\r\n", .unknownProtocol)),
        Named("empty protocol", ("PROXY \r\n", .malformedLine)),
        Named("double space before protocol", ("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", .malformedLine)),
        Named("protocol only", ("PROXY TCP4\r\n", .malformedLine)),
        Named("double space between addresses", ("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", .malformedLine)),
        Named("trailing space", ("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", .malformedLine)),
        Named("missing port", ("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", .malformedLine)),
        Named("extra field", ("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", .malformedLine)),
        Named("tab separator", ("PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n", .malformedLine)),
        Named("IPv4 leading zero", ("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", .badAddress)),
        Named("IPv4 octal-looking", ("PROXY TCP4 1.2.3.4 5.6.7.010 1 2\r\n", .badAddress)),
        Named("IPv4 256", ("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", .badAddress)),
        Named("IPv4 three parts", ("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", .badAddress)),
        Named("IPv4 five parts", ("PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n", .badAddress)),
        Named("IPv4 empty part", ("PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n", .badAddress)),
        Named("IPv4 four digits", ("PROXY TCP4 1.2.3.1000 5.6.7.8 1 2\r\n", .badAddress)),
        Named("IPv6 under TCP4", ("PROXY TCP4 ::1 ::1 1 2\r\n", .badAddress)),
        Named("IPv4 under TCP6", ("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", .badAddress)),
        Named("IPv6 triple colon", ("PROXY TCP6 2001:db8:::1 ::1 1 2\r\n", .badAddress)),
        Named("IPv6 two ::", ("PROXY TCP6 2001::1::2 ::1 1 2\r\n", .badAddress)),
        Named("IPv6 five hex digits", ("PROXY TCP6 12345::1 ::1 1 2\r\n", .badAddress)),
        Named("IPv6 seven groups", ("PROXY TCP6 1:2:3:4:5:6:7 ::1 1 2\r\n", .badAddress)),
        Named("IPv6 nine groups", ("PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", .badAddress)),
        Named("IPv6 :: with eight groups", ("PROXY TCP6 1:2:3:4:5:6:7:8:: ::1 1 2\r\n", .badAddress)),
        Named("IPv6 leading single colon", ("PROXY TCP6 :1:2:3:4:5:6:7 ::1 1 2\r\n", .badAddress)),
        Named("IPv6 trailing single colon", ("PROXY TCP6 1:2:3:4:5:6:7: ::1 1 2\r\n", .badAddress)),
        Named("IPv6 non-hex", ("PROXY TCP6 g::1 ::1 1 2\r\n", .badAddress)),
        Named("IPv6 dotted tail too long", ("PROXY TCP6 1:2:3:4:5:6:7:1.2.3.4 ::1 1 2\r\n", .badAddress)),
        Named("IPv6 dotted tail not last", ("PROXY TCP6 ::1.2.3.4:1 ::1 1 2\r\n", .badAddress)),
        Named("IPv6 zone id", ("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", .badAddress)),
        Named("IPv6 brackets", ("PROXY TCP6 [::1] ::1 1 2\r\n", .badAddress)),
        Named("port 65536", ("PROXY TCP4 1.2.3.4 5.6.7.8 65536 80\r\n", .badPort)),
        Named("port 99999", ("PROXY TCP4 1.2.3.4 5.6.7.8 80 99999\r\n", .badPort)),
        Named("port six digits", ("PROXY TCP4 1.2.3.4 5.6.7.8 123456 80\r\n", .badPort)),
        Named("port leading zero", ("PROXY TCP4 1.2.3.4 5.6.7.8 080 80\r\n", .badPort)),
        Named("port 00", ("PROXY TCP4 1.2.3.4 5.6.7.8 00 80\r\n", .badPort)),
        Named("port negative", ("PROXY TCP4 1.2.3.4 5.6.7.8 -1 80\r\n", .badPort)),
        Named("port plus sign", ("PROXY TCP4 1.2.3.4 5.6.7.8 +1 80\r\n", .badPort)),
        Named("port hex", ("PROXY TCP4 1.2.3.4 5.6.7.8 1a 80\r\n", .badPort)),
        Named("LF only", ("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", .strayLineBreak)),
        Named("CR then junk", ("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", .strayLineBreak)),
        Named("LF inside the line", ("PROXY TCP4 1.2.3.4\n5.6.7.8 1 2\r\n", .strayLineBreak)),
        Named("UNKNOWN with LF only", ("PROXY UNKNOWN\n", .strayLineBreak)),
        Named("CRLF as the 108th byte", ("PROXY UNKNOWN " + String(repeating: "x", count: 92) + "\r\n", .missingCRLF)),
        Named("107 bytes with no CRLF", ("PROXY UNKNOWN " + String(repeating: "x", count: 93), .missingCRLF)),
        Named("longer with no CRLF", ("PROXY TCP6 " + String(repeating: "f", count: 200), .missingCRLF)),
    ]

    @Test("v1 rejects with the right reason", arguments: v1Cases)
    func v1Rejects(_ testCase: Named<(String, ProxyDecodeError)>) {
        let (text, expected) = testCase.value
        #expect(ProxyHeader.decode(ascii(text)) == .invalid(expected))
    }

    private static let tcp4Block = "01020304 05060708 3039 0050"

    static let v2Cases: [Named<(String, ProxyDecodeError)>] = [
        Named("bad signature byte 2", ("0D0B0D0A 000D0A51 5549540A 21 11 000C \(tcp4Block)", .badSignature)),
        Named("bad signature byte 12", ("0D0A0D0A 000D0A51 5549540B 21 11 000C \(tcp4Block)", .badSignature)),
        Named("signature only partly there but wrong", ("0D0A0D0A 01", .badSignature)),
        Named("version 1", ("\(signatureHex) 11 11 000C \(tcp4Block)", .unsupportedVersion(0x11))),
        Named("version 3", ("\(signatureHex) 31 11 000C \(tcp4Block)", .unsupportedVersion(0x31))),
        Named("version 0", ("\(signatureHex) 01 11 000C \(tcp4Block)", .unsupportedVersion(0x01))),
        Named("command 2", ("\(signatureHex) 22 11 000C \(tcp4Block)", .unknownCommand(0x22))),
        Named("command F", ("\(signatureHex) 2F 11 000C \(tcp4Block)", .unknownCommand(0x2F))),
        Named("family 4", ("\(signatureHex) 21 41 000C \(tcp4Block)", .unknownAddressFamily(0x41))),
        Named("family F", ("\(signatureHex) 21 F1 000C \(tcp4Block)", .unknownAddressFamily(0xF1))),
        Named("protocol 3", ("\(signatureHex) 21 13 000C \(tcp4Block)", .unknownTransport(0x13))),
        Named("INET with UNSPEC protocol", ("\(signatureHex) 21 10 000C \(tcp4Block)", .unknownTransport(0x10))),
        Named("UNSPEC with STREAM protocol", ("\(signatureHex) 21 01 0000", .unknownTransport(0x01))),
        Named("rejected before the length arrives", ("\(signatureHex) 21 41", .unknownAddressFamily(0x41))),
        Named("TCP4 length 11", ("\(signatureHex) 21 11 000B 01020304 05060708 3039 00", .lengthTooShort(declared: 11, required: 12))),
        Named("TCP4 length 0", ("\(signatureHex) 21 11 0000", .lengthTooShort(declared: 0, required: 12))),
        Named("TCP6 length 12", ("\(signatureHex) 21 21 000C \(tcp4Block)", .lengthTooShort(declared: 12, required: 36))),
        Named("UNIX length 36", ("\(signatureHex) 21 31 0024" + String(repeating: "00", count: 36), .lengthTooShort(declared: 36, required: 216))),
        Named("LOCAL INET length 0", ("\(signatureHex) 20 11 0000", .lengthTooShort(declared: 0, required: 12))),
        Named("TLV value overruns", ("\(signatureHex) 21 11 000F \(tcp4Block) 04 0005", .tlvOverrun(offset: 28))),
        Named("TLV header cut short", ("\(signatureHex) 21 11 000E \(tcp4Block) 04 00", .tlvOverrun(offset: 28))),
        Named("second TLV overruns", ("\(signatureHex) 21 11 0014 \(tcp4Block) 04 0001 00 04 0002 00", .tlvOverrun(offset: 32))),
        Named("UNSPEC with garbage for TLVs", ("\(signatureHex) 21 00 0002 FFFF", .tlvOverrun(offset: 16))),
        Named("CRC32C of 3 bytes", ("\(signatureHex) 21 11 0012 \(tcp4Block) 03 0003 000000", .malformedTLV(type: 0x03))),
        Named("CRC32C twice", ("\(signatureHex) 20 00 000E 03 0004 00000000 03 0004 00000000", .malformedTLV(type: 0x03))),
        Named("UNIQUE_ID of 129 bytes", ("\(signatureHex) 21 00 0084 05 0081" + String(repeating: "55", count: 129), .malformedTLV(type: 0x05))),
        Named("CRC32C wrong", ("\(signatureHex) 21 11 0013 \(tcp4Block) 03 0004 5AF116B7",
                               .crc32cMismatch(received: 0x5AF1_16B7, computed: 0x5AF1_16B6))),
        Named("CRC32C right but address altered", ("\(signatureHex) 21 11 0013 01020305 05060708 3039 0050 03 0004 5AF116B6",
                                                    .crc32cMismatch(received: 0x5AF1_16B6, computed: CRC32C.checksum(
                                                        hex("\(signatureHex) 21 11 0013 01020305 05060708 3039 0050 03 0004 00000000"))))),
    ]

    @Test("v2 rejects with the right reason", arguments: v2Cases)
    func v2Rejects(_ testCase: Named<(String, ProxyDecodeError)>) {
        let (bytes, expected) = testCase.value
        #expect(ProxyHeader.decode(hex(bytes)) == .invalid(expected))
    }

    @Test("a byte flip anywhere in a CRC-protected header is caught")
    func crcCatchesEveryFlip() {
        let valid = v2Vectors.first { $0.name == "v2 TCP4 with CRC32C" }!.bytes
        // Skip the signature and fixed fields: flips there are rejected by
        // earlier checks; from the address block on, only the CRC can tell.
        // Byte 28 is the TLV's own type: 0x03 -> 0x02 turns the checksum into
        // an AUTHORITY TLV, a valid header without a CRC, which no checksum
        // can detect by design.
        for index in 16..<valid.count where index != 28 {
            var corrupted = valid
            corrupted[index] ^= 0x01
            guard case .invalid = ProxyHeader.decode(corrupted) else {
                Issue.record("flip at \(index) accepted")
                continue
            }
        }
    }
}
