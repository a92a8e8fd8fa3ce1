import PortunusProxyProtocol
import Testing

/// A header as a load balancer in front of the forwarder sends it, written out
/// by hand, with what `decodeInbound` must report and the TLVs at its range.
struct InboundVector: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    let header: InboundProxyHeader
    let tlvs: [ProxyTLV]
    var testDescription: String { name }
}

private let client4 = v4(1, 2, 3, 4, port: 12345)
private let server4 = v4(5, 6, 7, 8, port: 80)
private let client6 = v6([0x2001, 0xDB8, 0, 0, 0, 0, 0, 1], port: 40000)
private let server6 = v6([0x2001, 0xDB8, 0, 0, 0, 0, 0, 2], port: 443)

/// The header of an HAProxy-like balancer that sends everything at once:
/// AUTHORITY, its own UNIQUE_ID, a GCP PSC id, NOOP padding and a CRC32C.
/// length = 12 + 14 + 7 + 11 + 6 + 7 = 57 = 0x39; CRC32C worked out with a
/// bitwise CRC32C over the header with the value zeroed.
let everythingTLVBlockHex = """
    02 000B 6578616D706C652E636F6D
    05 0004 DEADBEEF
    E0 0008 0037D5A1F3B2C4E6
    04 0003 000000
    03 0004 4D213CBD
    """
let everythingAddressesHex = "CB007107 C0000201 C822 01BB"
let everythingClient = v4(203, 0, 113, 7, port: 51234)
let everythingServer = v4(192, 0, 2, 1, port: 443)

let inboundVectors: [InboundVector] = [
    InboundVector(
        name: "v1 TCP4",
        bytes: ascii("PROXY TCP4 1.2.3.4 5.6.7.8 12345 80\r\n"),
        header: InboundProxyHeader(version: .v1, transport: .stream, family: .inet,
                                   source: client4, destination: server4, length: 37),
        tlvs: []
    ),
    InboundVector(
        name: "v1 TCP6",
        bytes: ascii("PROXY TCP6 2001:db8::1 2001:db8::2 40000 443\r\n"),
        header: InboundProxyHeader(version: .v1, transport: .stream, family: .inet6,
                                   source: client6, destination: server6, length: 46),
        tlvs: []
    ),
    InboundVector(
        name: "v1 UNKNOWN",
        bytes: ascii("PROXY UNKNOWN\r\n"),
        header: InboundProxyHeader(version: .v1, transport: .unspec, family: .unspec, length: 15),
        tlvs: []
    ),
    InboundVector(
        name: "v2 TCP4",
        bytes: hex("\(signatureHex) 21 11 000C  01020304 05060708  3039 0050"),
        header: InboundProxyHeader(version: .v2, transport: .stream, family: .inet,
                                   source: client4, destination: server4, length: 28, tlvs: 28..<28),
        tlvs: []
    ),
    InboundVector(
        name: "v2 TCP6",
        bytes: hex("""
            \(signatureHex) 21 21 0024
            20010DB8 00000000 00000000 00000001
            20010DB8 00000000 00000000 00000002
            9C40 01BB
            """),
        header: InboundProxyHeader(version: .v2, transport: .stream, family: .inet6,
                                   source: client6, destination: server6, length: 52, tlvs: 52..<52),
        tlvs: []
    ),
    InboundVector(
        name: "v2 LOCAL (a balancer's health check)",
        bytes: hex("\(signatureHex) 20 00 0000"),
        header: InboundProxyHeader(version: .v2, command: .local, transport: .unspec, family: .unspec,
                                   length: 16, tlvs: 16..<16),
        tlvs: []
    ),
    InboundVector(
        name: "v2 TCP4 from an AWS NLB behind PrivateLink (0xEA, VPC endpoint id)",
        // length = 12 + 3 + 1 + 22 = 38 = 0x26; subtype 0x01 then the id in ASCII.
        bytes: hex("""
            \(signatureHex) 21 11 0026  C6336416 0A000114  9D78 01BB
            EA 0017 01 767063652D3038643262663135666163353030316339
            """),
        header: InboundProxyHeader(version: .v2, transport: .stream, family: .inet,
                                   source: v4(198, 51, 100, 22, port: 40312), destination: v4(10, 0, 1, 20, port: 443),
                                   length: 54, tlvs: 28..<54),
        tlvs: [ProxyTLV(type: ProxyTLVType(rawValue: 0xEA), value: [0x01] + ascii("vpce-08d2bf15fac5001c9"))]
    ),
    InboundVector(
        name: "v2 TCP6 from Azure Private Link (0xEE, LinkID)",
        // length = 36 + 3 + 5 = 44 = 0x2C; subtype 0x01 then the LinkID as a
        // little-endian 32-bit number (0x21000A3C).
        bytes: hex("""
            \(signatureHex) 21 21 002C
            20010DB8 00000000 00000000 00000001
            20010DB8 00000000 00000000 00000002
            9C40 01BB
            EE 0005 01 3C0A0021
            """),
        header: InboundProxyHeader(version: .v2, transport: .stream, family: .inet6,
                                   source: client6, destination: server6, length: 60, tlvs: 52..<60),
        tlvs: [ProxyTLV(type: ProxyTLVType(rawValue: 0xEE), value: [0x01, 0x3C, 0x0A, 0x00, 0x21])]
    ),
    InboundVector(
        name: "v2 TCP4 from GCP Private Service Connect (0xE0, connection id)",
        // length = 12 + 3 + 8 = 23 = 0x17; the id is a big-endian 64-bit number.
        bytes: hex("\(signatureHex) 21 11 0017  0A800009 0A800002  8707 0050  E0 0008 0037D5A1F3B2C4E6"),
        header: InboundProxyHeader(version: .v2, transport: .stream, family: .inet,
                                   source: v4(10, 128, 0, 9, port: 34567), destination: v4(10, 128, 0, 2, port: 80),
                                   length: 39, tlvs: 28..<39),
        tlvs: [ProxyTLV(type: ProxyTLVType(rawValue: 0xE0), value: [0x00, 0x37, 0xD5, 0xA1, 0xF3, 0xB2, 0xC4, 0xE6])]
    ),
    InboundVector(
        name: "v2 TCP4 with AUTHORITY, UNIQUE_ID, GCP, NOOP and CRC32C",
        bytes: hex("\(signatureHex) 21 11 0039 \(everythingAddressesHex) \(everythingTLVBlockHex)"),
        header: InboundProxyHeader(version: .v2, transport: .stream, family: .inet,
                                   source: everythingClient, destination: everythingServer,
                                   length: 73, tlvs: 28..<73),
        tlvs: [
            ProxyTLV(type: .authority, value: ascii("example.com")),
            ProxyTLV(type: .uniqueID, value: [0xDE, 0xAD, 0xBE, 0xEF]),
            ProxyTLV(type: ProxyTLVType(rawValue: 0xE0), value: [0x00, 0x37, 0xD5, 0xA1, 0xF3, 0xB2, 0xC4, 0xE6]),
            ProxyTLV(type: .noop, value: [0, 0, 0]),
            ProxyTLV(type: .crc32c, value: [0x4D, 0x21, 0x3C, 0xBD]),
        ]
    ),
    InboundVector(
        name: "v2 UNIX stream (no addresses reported)",
        bytes: hex("\(signatureHex) 21 31 00D8") + Array(repeating: 0x41, count: 216),
        header: InboundProxyHeader(version: .v2, transport: .stream, family: .unix, length: 232, tlvs: 232..<232),
        tlvs: []
    ),
    InboundVector(
        name: "v2 LOCAL carrying an INET block (addresses ignored)",
        bytes: hex("\(signatureHex) 20 11 000C  01020304 05060708  3039 0050"),
        header: InboundProxyHeader(version: .v2, command: .local, transport: .stream, family: .inet,
                                   length: 28, tlvs: 28..<28),
        tlvs: []
    ),
]

/// What a client may send right after its header: bytes that look like the
/// start of another header on purpose, so a reader that took one byte too
/// many, or stopped one short, would be caught by the decode that follows.
let trailingPayloads: [[UInt8]] = [
    ascii("GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
    ascii("PROXY TCP4 9.9.9.9 9.9.9.9 9 9\r\n"),
    hex("\(signatureHex) 21 11 000C"),
    [0x0D, 0x0A],
    [],
]
