import PortunusProxyProtocol
import Testing

@Suite("Decoding inbound headers in place")
struct InboundDecodeTests {
    @Test("decodes every balancer vector, with the TLVs at their range", arguments: inboundVectors)
    func decodesVector(_ vector: InboundVector) {
        for payload in trailingPayloads {
            let bytes = vector.bytes + payload
            bytes.withUnsafeBytes { bytes in
                #expect(ProxyHeader.decodeInbound(bytes) == .complete(vector.header))
                #expect(vector.header.materializeTLVs(from: bytes) == vector.tlvs)
                #expect(vector.header.tlvs.upperBound == vector.header.length, "TLVs end with the header")
            }
        }
    }

    @Test("agrees with decode on every balancer vector", arguments: inboundVectors)
    func agreesOnInbound(_ vector: InboundVector) {
        let expected = DecodedProxyHeader(
            version: vector.header.version, command: vector.header.command, transport: vector.header.transport,
            family: vector.header.family, source: vector.header.source, destination: vector.header.destination,
            tlvs: vector.tlvs
        )
        #expect(ProxyHeader.decode(vector.bytes) == .complete(expected, consumed: vector.bytes.count))
    }

    @Test("agrees with decode on every older vector", arguments: allValidInputs)
    func agreesOnOlderVectors(_ input: Named<[UInt8]>) {
        input.value.withUnsafeBytes { bytes in
            guard case .complete(let header) = ProxyHeader.decodeInbound(bytes),
                  case .complete(let decoded, let consumed) = ProxyHeader.decode(bytes)
            else {
                Issue.record("did not decode")
                return
            }
            #expect(header.materialize(from: bytes) == decoded)
            #expect(header.length == consumed)
        }
    }

    @Test("every prefix needs the same as decode says", arguments: inboundVectors)
    func prefixes(_ vector: InboundVector) {
        for length in 0..<vector.bytes.count {
            let prefix = Array(vector.bytes[..<length])
            guard case .needMore(let atLeast) = ProxyHeader.decode(prefix) else {
                Issue.record("prefix \(length) did not need more")
                continue
            }
            #expect(prefix.withUnsafeBytes { ProxyHeader.decodeInbound($0) } == .needMore(atLeast: atLeast))
        }
    }

    @Test("rejects what decode rejects, for the same reason",
          arguments: MalformedTests.v1Cases.map { Named($0.name, (ascii($0.value.0), $0.value.1)) }
            + MalformedTests.v2Cases.map { Named($0.name, (hex($0.value.0), $0.value.1)) })
    func rejects(_ testCase: Named<([UInt8], ProxyDecodeError)>) {
        let (bytes, expected) = testCase.value
        #expect(bytes.withUnsafeBytes { ProxyHeader.decodeInbound($0) } == .invalid(expected))
    }

    @Test("a CRC32C mismatch in a balancer's header is invalid")
    func crcMismatch() {
        var bytes = inboundVectors.last { $0.name.contains("CRC32C") }!.bytes
        bytes[20] ^= 0x80 // the destination address
        guard case .invalid(.crc32cMismatch(let received, _)) = bytes.withUnsafeBytes({ ProxyHeader.decodeInbound($0) }) else {
            Issue.record("altered header accepted")
            return
        }
        #expect(received == 0x4D21_3CBD)
    }
}
