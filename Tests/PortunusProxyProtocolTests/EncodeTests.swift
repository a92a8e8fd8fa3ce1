import PortunusProxyProtocol
import Testing

@Suite("Encoding")
struct EncodeTests {
    @Test("encodes the hand-written vector byte for byte", arguments: v1Vectors + v2Vectors)
    func encodesVector(_ vector: Vector) {
        #expect(vector.encode().value == vector.bytes)
    }

    @Test("v2 TCP4 is 28 bytes and TCP6 is 52, as the seed and SPEC say")
    func v2Sizes() {
        let tcp4 = ProxyHeader.encodeV2(source: v4(1, 2, 3, 4, port: 1), destination: v4(5, 6, 7, 8, port: 2))
        let tcp6 = ProxyHeader.encodeV2(source: v6([1, 0, 0, 0, 0, 0, 0, 1], port: 1), destination: v6([2, 0, 0, 0, 0, 0, 0, 2], port: 2))
        #expect(tcp4.value?.count == 28)
        #expect(tcp6.value?.count == 52)
    }

    @Test("into: writes exactly the header and nothing past it", arguments: v1Vectors + v2Vectors)
    func encodesIntoBuffer(_ vector: Vector) throws {
        var storage = [UInt8](repeating: 0xAA, count: 256)
        let written = storage.withUnsafeMutableBytes { reencode(vector.decoded, into: $0) }
        let length = try #require(written.value)
        #expect(length == vector.bytes.count)
        #expect(Array(storage[..<length]) == vector.bytes)
        #expect(storage[length...].allSatisfy { $0 == 0xAA })
    }

    @Test("the engine entry point picks the version", arguments: [ProxyVersion.v1, .v2])
    func engineEntryPoint(_ version: ProxyVersion) throws {
        var storage = [UInt8](repeating: 0, count: ProxyHeader.maxLengthWithoutTLVs)
        let length = try #require(storage.withUnsafeMutableBytes {
            ProxyHeader.encode(version, source: v4(1, 2, 3, 4, port: 12345), destination: v4(5, 6, 7, 8, port: 80), into: $0)
        }.value)
        let expected = version == .v1 ? v1Vectors[0].bytes : v2Vectors[0].bytes
        #expect(Array(storage[..<length]) == expected)
    }

    static let mismatchedPairs: [Named<(ProxyAddress, ProxyAddress)>] = [
        Named("v4 source, v6 destination", (v4(1, 2, 3, 4, port: 1), v6([0x2001, 0xDB8, 0, 0, 0, 0, 0, 1], port: 2))),
        Named("v6 source, v4 destination", (v6([0xFE80, 0, 0, 0, 0, 0, 0, 1], port: 1), v4(1, 2, 3, 4, port: 2))),
        Named("v4 source, ::1 destination", (v4(127, 0, 0, 1, port: 1), v6([0, 0, 0, 0, 0, 0, 0, 1], port: 2))),
    ]

    @Test("mismatched families are an error value in both versions", arguments: mismatchedPairs)
    func familyMismatch(_ pair: Named<(ProxyAddress, ProxyAddress)>) {
        let (source, destination) = pair.value
        #expect(ProxyHeader.encodeV1(source: source, destination: destination).error == .familyMismatch)
        #expect(ProxyHeader.encodeV2(source: source, destination: destination).error == .familyMismatch)
    }

    @Test("a plain IPv4 paired with an IPv4-mapped address goes as TCP4")
    func mixedPlainAndMapped() {
        let v1 = ProxyHeader.encodeV1(source: v4(1, 2, 3, 4, port: 12345), destination: mapped(5, 6, 7, 8, port: 80))
        let v2 = ProxyHeader.encodeV2(source: mapped(1, 2, 3, 4, port: 12345), destination: v4(5, 6, 7, 8, port: 80))
        #expect(v1.value == v1Vectors[0].bytes)
        #expect(v2.value == v2Vectors[0].bytes)
    }

    @Test("a mapped address next to a native IPv6 one stays IPv6, in mixed notation")
    func mappedWithNativeIPv6() {
        let source = mapped(192, 0, 2, 1, port: 1)
        let destination = v6([0x2001, 0xDB8, 0, 0, 0, 0, 0, 1], port: 2)
        #expect(ProxyHeader.encodeV1(source: source, destination: destination).value
            == ascii("PROXY TCP6 ::ffff:192.0.2.1 2001:db8::1 1 2\r\n"))
        #expect(ProxyHeader.encodeV2(source: source, destination: destination).value?.count == 52)
    }

    @Test("exactly one address is an error value")
    func missingAddress() {
        let address = v4(1, 2, 3, 4, port: 1)
        #expect(ProxyHeader.encodeV1(source: address, destination: nil).error == .missingAddress)
        #expect(ProxyHeader.encodeV1(source: nil, destination: address).error == .missingAddress)
        #expect(ProxyHeader.encodeV2(source: address, destination: nil).error == .missingAddress)
        #expect(ProxyHeader.encodeV2(source: nil, destination: address).error == .missingAddress)
    }

    @Test("LOCAL ignores whatever addresses it is given")
    func localIgnoresAddresses() {
        let result = ProxyHeader.encodeV2(command: .local, source: v4(1, 2, 3, 4, port: 1), destination: nil)
        #expect(result.value == hex("\(signatureHex) 20 00 0000"))
    }

    @Test("every buffer one byte short or more fails with the exact size and writes nothing",
          arguments: v1Vectors + v2Vectors)
    func bufferTooSmall(_ vector: Vector) {
        for size in 0..<vector.bytes.count {
            var storage = [UInt8](repeating: 0xAA, count: size)
            let result = storage.withUnsafeMutableBytes { reencode(vector.decoded, into: $0) }
            #expect(result.error == .bufferTooSmall(needed: vector.bytes.count), "size \(size)")
            #expect(storage.allSatisfy { $0 == 0xAA }, "size \(size) was written to")
        }
    }

    static let tlvErrors: [Named<([ProxyTLV], ProxyEncodeError)>] = [
        Named("UNIQUE_ID over 128 bytes", ([.uniqueID(Array(repeating: 1, count: 129))], .tlvTooLong(type: 0x05, length: 129))),
        Named("value over 65535 bytes", ([.noop(count: 65536)], .tlvTooLong(type: 0x04, length: 65536))),
        Named("CRC32C passed as a TLV", ([ProxyTLV(type: .crc32c, value: [0, 0, 0, 0])], .crc32cSuppliedAsTLV)),
        Named("addresses + TLV over 65535", ([.noop(count: 65535)], .headerTooLong(length: 12 + 3 + 65535))),
        Named("two TLVs over 65535", ([.noop(count: 40000), .authority(String(repeating: "a", count: 30000))],
                                      .headerTooLong(length: 12 + 40003 + 30003))),
    ]

    @Test("TLV limits are error values", arguments: tlvErrors)
    func tlvLimits(_ testCase: Named<([ProxyTLV], ProxyEncodeError)>) {
        let (tlvs, expected) = testCase.value
        let result = ProxyHeader.encodeV2(source: v4(1, 2, 3, 4, port: 1), destination: v4(5, 6, 7, 8, port: 2), tlvs: tlvs)
        #expect(result.error == expected)
    }

    @Test("the largest legal v2 header encodes and decodes")
    func largestHeader() throws {
        // 65535 = 12 address bytes + 3 TLV header bytes + 65520 value bytes.
        let tlv = ProxyTLV.noop(count: 65520)
        let bytes = try #require(ProxyHeader.encodeV2(source: v4(1, 2, 3, 4, port: 1), destination: v4(5, 6, 7, 8, port: 2), tlvs: [tlv]).value)
        #expect(bytes.count == 16 + 65535)
        guard case .complete(let header, let consumed) = ProxyHeader.decode(bytes) else {
            Issue.record("did not decode")
            return
        }
        #expect(consumed == bytes.count)
        #expect(header.tlvs == [tlv])
    }
}

/// Encodes, through the engine's `into:` form, the header a vector decodes to.
/// Every vector's decoded value carries enough to rebuild its bytes (mapped
/// pairs decode to plain IPv4, which encodes identically).
func reencode(_ decoded: DecodedProxyHeader, into buffer: UnsafeMutableRawBufferPointer) -> Result<Int, ProxyEncodeError> {
    switch decoded.version {
    case .v1:
        return ProxyHeader.encodeV1(source: decoded.source, destination: decoded.destination, into: buffer)
    case .v2:
        return ProxyHeader.encodeV2(
            command: decoded.command,
            transport: decoded.transport == .unspec ? .stream : decoded.transport,
            source: decoded.source, destination: decoded.destination,
            tlvs: decoded.tlvs.filter { $0.type != .crc32c },
            crc32c: decoded.tlvs.contains { $0.type == .crc32c },
            into: buffer
        )
    }
}
