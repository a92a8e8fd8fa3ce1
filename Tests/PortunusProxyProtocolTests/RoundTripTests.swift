import PortunusProxyProtocol
import Testing

/// Random addresses biased toward the shapes that stress the text forms:
/// zero runs of every length (for "::"), mapped addresses (for the TCP4 rule),
/// and boundary ports.
struct AddressGenerator {
    var random: SplitMix64

    mutating func port() -> UInt16 {
        switch random.next() % 4 {
        case 0: return [0, 1, 9, 10, 99, 100, 65535][Int(random.next() % 7)]
        default: return UInt16(truncatingIfNeeded: random.next())
        }
    }

    mutating func ipv4() -> ProxyAddress {
        ProxyAddress(ipv4: UInt32(truncatingIfNeeded: random.next()), port: port())
    }

    mutating func ipv6() -> ProxyAddress {
        var groups = [UInt16](repeating: 0, count: 8)
        for index in 0..<8 where random.next() % 2 == 0 {
            groups[index] = UInt16(truncatingIfNeeded: random.next() >> UInt64(random.next() % 16))
        }
        return v6(groups, port: port())
    }

    mutating func mappedIPv4() -> ProxyAddress {
        let value = UInt32(truncatingIfNeeded: random.next())
        return v6([0, 0, 0, 0, 0, 0xFFFF, UInt16(value >> 16), UInt16(value & 0xFFFF)], port: port())
    }

    /// A pair that must encode, and the pair decoding must give back.
    mutating func pair() -> (input: (ProxyAddress, ProxyAddress), expected: (ProxyAddress, ProxyAddress)) {
        switch random.next() % 4 {
        case 0:
            let pair = (ipv4(), ipv4())
            return (pair, pair)
        case 1:
            let pair = (mappedIPv4(), mappedIPv4())
            return (pair, (pair.0.unmappedIPv4!, pair.1.unmappedIPv4!))
        case 2:
            let pair = (ipv4(), mappedIPv4())
            return (pair, (pair.0, pair.1.unmappedIPv4!))
        default:
            let pair = (ipv6(), ipv6())
            let expected = pair.0.isIPv4Mapped && pair.1.isIPv4Mapped
                ? (pair.0.unmappedIPv4!, pair.1.unmappedIPv4!) : pair
            return (pair, expected)
        }
    }

    mutating func tlvs() -> [ProxyTLV] {
        (0..<Int(random.next() % 4)).map { _ in
            let type = ProxyTLVType(rawValue: [0x01, 0x02, 0x04, 0x05, 0x20, 0x30, 0xE0, 0xF7][Int(random.next() % 8)])
            let length = Int(random.next() % (type == .uniqueID ? 129 : 300))
            return ProxyTLV(type: type, value: (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) })
        }
    }
}

@Suite("Round trips")
struct RoundTripTests {
    @Test("v1: encode then decode gives the addresses back", arguments: [1, 2, 3] as [UInt64])
    func v1(seed: UInt64) throws {
        var generator = AddressGenerator(random: SplitMix64(seed: seed))
        for _ in 0..<2_000 {
            let (input, expected) = generator.pair()
            let bytes = try #require(ProxyHeader.encodeV1(source: input.0, destination: input.1).value)
            #expect(bytes.count <= 104)
            let header = DecodedProxyHeader(
                version: .v1, transport: .stream, family: expected.0.family == .ipv4 ? .inet : .inet6,
                source: expected.0, destination: expected.1
            )
            #expect(ProxyHeader.decode(bytes) == .complete(header, consumed: bytes.count), "\(input)")
        }
    }

    @Test("v2: encode then decode gives addresses, transport and TLVs back", arguments: [4, 5, 6] as [UInt64])
    func v2(seed: UInt64) throws {
        var generator = AddressGenerator(random: SplitMix64(seed: seed))
        for _ in 0..<2_000 {
            let (input, expected) = generator.pair()
            let transport: ProxyTransport = generator.random.next() % 2 == 0 ? .stream : .dgram
            let tlvs = generator.tlvs()
            let crc = generator.random.next() % 2 == 0
            let bytes = try #require(ProxyHeader.encodeV2(
                transport: transport, source: input.0, destination: input.1, tlvs: tlvs, crc32c: crc
            ).value)
            guard case .complete(let header, let consumed) = ProxyHeader.decode(bytes) else {
                Issue.record("did not decode: \(input)")
                continue
            }
            #expect(consumed == bytes.count)
            #expect(header.version == .v2 && header.command == .proxy && header.transport == transport)
            #expect(header.source == expected.0 && header.destination == expected.1)
            #expect(header.family == (expected.0.family == .ipv4 ? .inet : .inet6))
            #expect(header.tlvs.filter { $0.type != .crc32c } == tlvs)
            #expect(header.tlvs.contains { $0.type == .crc32c } == crc)
        }
    }

    @Test("v1 text is canonical: decoding and re-encoding gives the same bytes", arguments: [7] as [UInt64])
    func v1Canonical(seed: UInt64) throws {
        var generator = AddressGenerator(random: SplitMix64(seed: seed))
        for _ in 0..<2_000 {
            let (input, _) = generator.pair()
            let bytes = try #require(ProxyHeader.encodeV1(source: input.0, destination: input.1).value)
            guard case .complete(let header, _) = ProxyHeader.decode(bytes) else {
                Issue.record("did not decode")
                continue
            }
            #expect(ProxyHeader.encodeV1(source: header.source, destination: header.destination).value == bytes)
        }
    }
}
