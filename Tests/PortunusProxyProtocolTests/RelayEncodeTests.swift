import PortunusProxyProtocol
import Testing

/// The relaying encoder with the byte vector it must write.
struct RelayVector: Sendable, CustomTestStringConvertible {
    let name: String
    let source: ProxyAddress?
    let destination: ProxyAddress?
    let block: [UInt8]
    let uniqueID: [UInt8]?
    let crc32c: Bool
    let bytes: [UInt8]
    var testDescription: String { name }
}

private let everythingBlock = hex(everythingTLVBlockHex)
private let ourID = ascii("ptn-0001") // 70746E2D30303031

@Suite("Relaying inbound TLVs")
struct RelayEncodeTests {
    static let vectors: [RelayVector] = [
        RelayVector(
            name: "our UNIQUE_ID replaces theirs; NOOP and their CRC32C dropped; a new CRC32C last",
            source: everythingClient, destination: everythingServer, block: everythingBlock,
            uniqueID: ourID, crc32c: true,
            // length = 12 + 14 (AUTHORITY) + 11 (GCP) + 11 (ours) + 7 = 55 = 0x37;
            // CRC32C worked out with a bitwise CRC32C.
            bytes: hex("""
                \(signatureHex) 21 11 0037 \(everythingAddressesHex)
                02 000B 6578616D706C652E636F6D
                E0 0008 0037D5A1F3B2C4E6
                05 0008 70746E2D30303031
                03 0004 871F3AA9
                """)
        ),
        RelayVector(
            name: "without an id of ours theirs passes on; no CRC32C asked, none written",
            source: everythingClient, destination: everythingServer, block: everythingBlock,
            uniqueID: nil, crc32c: false,
            // length = 12 + 14 + 7 + 11 = 44 = 0x2C
            bytes: hex("""
                \(signatureHex) 21 11 002C \(everythingAddressesHex)
                02 000B 6578616D706C652E636F6D
                05 0004 DEADBEEF
                E0 0008 0037D5A1F3B2C4E6
                """)
        ),
        RelayVector(
            name: "no addresses: PROXY command, family UNSPEC",
            source: nil, destination: nil, block: everythingBlock,
            uniqueID: nil, crc32c: true,
            // length = 14 + 7 + 11 + 7 = 39 = 0x27
            bytes: hex("""
                \(signatureHex) 21 00 0027
                02 000B 6578616D706C652E636F6D
                05 0004 DEADBEEF
                E0 0008 0037D5A1F3B2C4E6
                03 0004 556C7936
                """)
        ),
        RelayVector(
            name: "AWS VPC endpoint TLV passed on unchanged to an IPv6 target pair",
            source: v6([0x2001, 0xDB8, 0, 0, 0, 0, 0, 1], port: 40000),
            destination: v6([0x2001, 0xDB8, 0, 0, 0, 0, 0, 2], port: 443),
            block: hex("EA 0017 01 767063652D3038643262663135666163353030316339"),
            uniqueID: nil, crc32c: false,
            // length = 36 + 26 = 62 = 0x3E
            bytes: hex("""
                \(signatureHex) 21 21 003E
                20010DB8 00000000 00000000 00000001
                20010DB8 00000000 00000000 00000002
                9C40 01BB
                EA 0017 01 767063652D3038643262663135666163353030316339
                """)
        ),
        RelayVector(
            name: "empty block, our id only, IPv4-mapped pair sent as INET",
            source: mapped(10, 0, 0, 1, port: 5000), destination: mapped(10, 0, 0, 2, port: 8080), block: [],
            uniqueID: [0x42], crc32c: false,
            // length = 12 + 4 = 16 = 0x10
            bytes: hex("\(signatureHex) 21 11 0010  0A000001 0A000002  1388 1F90  05 0001 42")
        ),
        RelayVector(
            name: "a block of only NOOP and CRC32C leaves nothing to pass",
            source: v4(1, 2, 3, 4, port: 12345), destination: v4(5, 6, 7, 8, port: 80),
            block: hex("04 0000 03 0004 00000000 04 0002 0000"),
            uniqueID: nil, crc32c: false,
            bytes: hex("\(signatureHex) 21 11 000C  01020304 05060708  3039 0050")
        ),
    ]

    @Test("writes the hand-written bytes", arguments: vectors)
    func encodesVector(_ vector: RelayVector) {
        let result = ProxyHeader.encodeV2(
            source: vector.source, destination: vector.destination, passing: vector.block,
            uniqueID: vector.uniqueID, crc32c: vector.crc32c
        )
        #expect(result.value == vector.bytes)
    }

    @Test("the output decodes, with the CRC32C verified by the decoder", arguments: vectors)
    func decodesBack(_ vector: RelayVector) throws {
        guard case .complete(let header, let consumed) = ProxyHeader.decode(vector.bytes) else {
            Issue.record("relayed header does not decode")
            return
        }
        #expect(consumed == vector.bytes.count)
        #expect(header.command == .proxy)
        #expect(header.tlvs.contains { $0.type == .crc32c } == vector.crc32c)
        #expect(header.tlvs.filter { $0.type == .uniqueID }.count <= 1)
        if let id = vector.uniqueID {
            #expect(header.tlvs.contains(ProxyTLV(type: .uniqueID, value: id)))
        }
        if vector.crc32c {
            var altered = vector.bytes
            // The last value byte before the CRC32C TLV: every relayed
            // header has one there, and only the checksum can notice it.
            altered[altered.count - 8] ^= 0x01
            guard case .invalid(.crc32cMismatch) = ProxyHeader.decode(altered) else {
                Issue.record("a flipped bit passed the CRC32C")
                return
            }
        }
    }

    @Test("into: writes exactly the header; every shorter buffer fails with the size and writes nothing",
          arguments: vectors)
    func bufferSizes(_ vector: RelayVector) {
        let needed = vector.bytes.count
        for size in [needed, needed + 7] + Array(0..<needed) {
            var storage = [UInt8](repeating: 0xAA, count: size)
            let result = storage.withUnsafeMutableBytes { buffer in
                vector.block.withUnsafeBytes { block in
                    withID(vector.uniqueID) { id in
                        ProxyHeader.encodeV2(source: vector.source, destination: vector.destination, passing: block,
                                             uniqueID: id, crc32c: vector.crc32c, into: buffer)
                    }
                }
            }
            if size >= needed {
                #expect(result.value == needed)
                #expect(Array(storage[..<needed]) == vector.bytes)
                #expect(storage[needed...].allSatisfy { $0 == 0xAA })
            } else {
                #expect(result.error == .bufferTooSmall(needed: needed), "size \(size)")
                #expect(storage.allSatisfy { $0 == 0xAA }, "size \(size) was written to")
            }
        }
    }

    @Test("relaying a relayed block again changes nothing (the policy is idempotent)")
    func idempotent() throws {
        let once = try #require(ProxyHeader.encodeV2(source: nil, destination: nil, passing: everythingBlock,
                                                     uniqueID: ourID, crc32c: true).value)
        let block = Array(once[16...])
        let twice = try #require(ProxyHeader.encodeV2(source: nil, destination: nil, passing: block,
                                                      uniqueID: ourID, crc32c: true).value)
        #expect(twice == once)
    }

    static let errors: [Named<([UInt8], [UInt8]?, ProxyAddress?, ProxyEncodeError)>] = [
        Named("TLV value overruns the block", (hex("E0 0008 0037D5"), nil, v4(1, 2, 3, 4, port: 1),
                                              .malformedInboundTLVs(.tlvOverrun(offset: 0)))),
        Named("TLV header cut short after one good TLV", (hex("04 0000 E0 00"), nil, v4(1, 2, 3, 4, port: 1),
                                                          .malformedInboundTLVs(.tlvOverrun(offset: 3)))),
        Named("a CRC32C of 3 bytes, even though it is dropped", (hex("03 0003 000000"), nil, v4(1, 2, 3, 4, port: 1),
                                                                 .malformedInboundTLVs(.malformedTLV(type: 0x03)))),
        Named("their UNIQUE_ID over 128 bytes", (hex("05 0081") + Array(repeating: 0x55, count: 129), nil, v4(1, 2, 3, 4, port: 1),
                                                 .malformedInboundTLVs(.malformedTLV(type: 0x05)))),
        Named("our UNIQUE_ID empty", ([], [], v4(1, 2, 3, 4, port: 1), .emptyUniqueID)),
        Named("our UNIQUE_ID of 129 bytes", ([], Array(repeating: 1, count: 129), v4(1, 2, 3, 4, port: 1),
                                             .tlvTooLong(type: 0x05, length: 129))),
        Named("one address only", ([], nil, nil, .missingAddress)),
        Named("over 65,535 bytes of length", ([0xE0, 0xFF, 0xEC] + Array(repeating: 0, count: 0xFFEC), nil, v4(1, 2, 3, 4, port: 1),
                                              .headerTooLong(length: 12 + 3 + 0xFFEC + 7))),
    ]

    @Test("errors are values and nothing is written", arguments: errors)
    func rejects(_ testCase: Named<([UInt8], [UInt8]?, ProxyAddress?, ProxyEncodeError)>) {
        let (block, id, destination, expected) = testCase.value
        var storage = [UInt8](repeating: 0xAA, count: 128)
        let result = storage.withUnsafeMutableBytes { buffer in
            block.withUnsafeBytes { block in
                withID(id) { id in
                    ProxyHeader.encodeV2(source: v4(5, 6, 7, 8, port: 2), destination: destination, passing: block,
                                         uniqueID: id, crc32c: true, into: buffer)
                }
            }
        }
        #expect(result.error == expected)
        #expect(storage.allSatisfy { $0 == 0xAA })
    }
}

private func withID<R>(_ id: [UInt8]?, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
    guard let id else { return body(nil) }
    return id.withUnsafeBytes { body($0) }
}
