import PortunusProxyProtocol
import Testing

/// A byte-exact header written by hand from the spec, the call that must
/// produce it, and what decoding it must give back.
struct Vector: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    let encode: @Sendable () -> Result<[UInt8], ProxyEncodeError>
    let decoded: DecodedProxyHeader
    var testDescription: String { name }
}

private let client4 = v4(1, 2, 3, 4, port: 12345)
private let server4 = v4(5, 6, 7, 8, port: 80)
private let client6 = v6([0x2001, 0xDB8, 0, 0, 0, 0, 0, 1], port: 40000)
private let server6 = v6([0x2001, 0xDB8, 0, 0, 0, 0, 0, 2], port: 443)

private func tcp(_ version: ProxyVersion, _ source: ProxyAddress, _ destination: ProxyAddress,
                 tlvs: [ProxyTLV] = []) -> DecodedProxyHeader {
    DecodedProxyHeader(
        version: version, command: .proxy, transport: .stream,
        family: source.family == .ipv4 ? .inet : .inet6,
        source: source, destination: destination, tlvs: tlvs
    )
}

let v1Vectors: [Vector] = [
    Vector(
        name: "v1 TCP4 (seed example)",
        bytes: ascii("PROXY TCP4 1.2.3.4 5.6.7.8 12345 80\r\n"),
        encode: { ProxyHeader.encodeV1(source: client4, destination: server4) },
        decoded: tcp(.v1, client4, server4)
    ),
    Vector(
        name: "v1 TCP4 (spec example)",
        bytes: ascii("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"),
        encode: { ProxyHeader.encodeV1(source: v4(192, 168, 0, 1, port: 56324), destination: v4(192, 168, 0, 11, port: 443)) },
        decoded: tcp(.v1, v4(192, 168, 0, 1, port: 56324), v4(192, 168, 0, 11, port: 443))
    ),
    Vector(
        name: "v1 TCP4 zeros",
        bytes: ascii("PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n"),
        encode: { ProxyHeader.encodeV1(source: v4(0, 0, 0, 0, port: 0), destination: v4(0, 0, 0, 0, port: 0)) },
        decoded: tcp(.v1, v4(0, 0, 0, 0, port: 0), v4(0, 0, 0, 0, port: 0))
    ),
    Vector(
        name: "v1 TCP4 longest (56 bytes)",
        bytes: ascii("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"),
        encode: { ProxyHeader.encodeV1(source: v4(255, 255, 255, 255, port: 65535), destination: v4(255, 255, 255, 255, port: 65535)) },
        decoded: tcp(.v1, v4(255, 255, 255, 255, port: 65535), v4(255, 255, 255, 255, port: 65535))
    ),
    Vector(
        name: "v1 TCP6",
        bytes: ascii("PROXY TCP6 2001:db8::1 2001:db8::2 40000 443\r\n"),
        encode: { ProxyHeader.encodeV1(source: client6, destination: server6) },
        decoded: tcp(.v1, client6, server6)
    ),
    Vector(
        name: "v1 TCP6 longest (104 bytes)",
        bytes: ascii("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
        encode: {
            let all = v6(Array(repeating: 0xFFFF, count: 8), port: 65535)
            return ProxyHeader.encodeV1(source: all, destination: all)
        },
        decoded: tcp(.v1, v6(Array(repeating: 0xFFFF, count: 8), port: 65535), v6(Array(repeating: 0xFFFF, count: 8), port: 65535))
    ),
    Vector(
        name: "v1 TCP6 loopback and unspecified",
        bytes: ascii("PROXY TCP6 ::1 :: 1 65535\r\n"),
        encode: { ProxyHeader.encodeV1(source: v6([0, 0, 0, 0, 0, 0, 0, 1], port: 1), destination: v6([0, 0, 0, 0, 0, 0, 0, 0], port: 65535)) },
        decoded: tcp(.v1, v6([0, 0, 0, 0, 0, 0, 0, 1], port: 1), v6([0, 0, 0, 0, 0, 0, 0, 0], port: 65535))
    ),
    Vector(
        name: "v1 UNKNOWN",
        bytes: ascii("PROXY UNKNOWN\r\n"),
        encode: { ProxyHeader.encodeV1(source: nil, destination: nil) },
        decoded: DecodedProxyHeader(version: .v1, transport: .unspec, family: .unspec)
    ),
    Vector(
        name: "v1 IPv4-mapped pair sent as TCP4",
        bytes: ascii("PROXY TCP4 10.0.0.1 10.0.0.2 5000 8080\r\n"),
        encode: { ProxyHeader.encodeV1(source: mapped(10, 0, 0, 1, port: 5000), destination: mapped(10, 0, 0, 2, port: 8080)) },
        decoded: tcp(.v1, v4(10, 0, 0, 1, port: 5000), v4(10, 0, 0, 2, port: 8080))
    ),
]

let v2Vectors: [Vector] = [
    Vector(
        name: "v2 TCP4 (28 bytes)",
        bytes: hex("\(signatureHex) 21 11 000C  01020304 05060708  3039 0050"),
        encode: { ProxyHeader.encodeV2(source: client4, destination: server4) },
        decoded: tcp(.v2, client4, server4)
    ),
    Vector(
        name: "v2 TCP6 (52 bytes)",
        bytes: hex("""
            \(signatureHex) 21 21 0024
            20010DB8 00000000 00000000 00000001
            20010DB8 00000000 00000000 00000002
            9C40 01BB
            """),
        encode: { ProxyHeader.encodeV2(source: client6, destination: server6) },
        decoded: tcp(.v2, client6, server6)
    ),
    Vector(
        name: "v2 LOCAL",
        bytes: hex("\(signatureHex) 20 00 0000"),
        encode: { ProxyHeader.encodeV2(command: .local, source: client4, destination: server4) },
        decoded: DecodedProxyHeader(version: .v2, command: .local, transport: .unspec, family: .unspec)
    ),
    Vector(
        name: "v2 PROXY without addresses (UNSPEC)",
        bytes: hex("\(signatureHex) 21 00 0000"),
        encode: { ProxyHeader.encodeV2(source: nil, destination: nil) },
        decoded: DecodedProxyHeader(version: .v2, command: .proxy, transport: .unspec, family: .unspec)
    ),
    Vector(
        name: "v2 UDP4 (DGRAM)",
        bytes: hex("\(signatureHex) 21 12 000C  0A000001 0A000002  0035 14E9"),
        encode: { ProxyHeader.encodeV2(transport: .dgram, source: v4(10, 0, 0, 1, port: 53), destination: v4(10, 0, 0, 2, port: 5353)) },
        decoded: DecodedProxyHeader(
            version: .v2, command: .proxy, transport: .dgram, family: .inet,
            source: v4(10, 0, 0, 1, port: 53), destination: v4(10, 0, 0, 2, port: 5353)
        )
    ),
    Vector(
        name: "v2 UDP6 (DGRAM)",
        bytes: hex("""
            \(signatureHex) 21 22 0024
            20010DB8 00000000 00000000 00000001
            20010DB8 00000000 00000000 00000002
            9C40 01BB
            """),
        encode: { ProxyHeader.encodeV2(transport: .dgram, source: client6, destination: server6) },
        decoded: DecodedProxyHeader(
            version: .v2, command: .proxy, transport: .dgram, family: .inet6,
            source: client6, destination: server6
        )
    ),
    Vector(
        name: "v2 IPv4-mapped pair sent as TCP4",
        bytes: hex("\(signatureHex) 21 11 000C  0A000001 0A000002  1388 1F90"),
        encode: { ProxyHeader.encodeV2(source: mapped(10, 0, 0, 1, port: 5000), destination: mapped(10, 0, 0, 2, port: 8080)) },
        decoded: tcp(.v2, v4(10, 0, 0, 1, port: 5000), v4(10, 0, 0, 2, port: 8080))
    ),
    Vector(
        name: "v2 TCP4 with AUTHORITY, UNIQUE_ID, NOOP",
        // length = 12 + (3 + 11) + (3 + 4) + (3 + 2) = 38 = 0x26
        bytes: hex("""
            \(signatureHex) 21 11 0026  01020304 05060708  3039 0050
            02 000B 6578616D706C652E636F6D
            05 0004 DEADBEEF
            04 0002 0000
            """),
        encode: {
            ProxyHeader.encodeV2(
                source: client4, destination: server4,
                tlvs: [.authority("example.com"), .uniqueID([0xDE, 0xAD, 0xBE, 0xEF]), .noop(count: 2)]
            )
        },
        decoded: tcp(.v2, client4, server4, tlvs: [
            ProxyTLV(type: .authority, value: ascii("example.com")),
            ProxyTLV(type: .uniqueID, value: [0xDE, 0xAD, 0xBE, 0xEF]),
            ProxyTLV(type: .noop, value: [0, 0]),
        ])
    ),
    Vector(
        name: "v2 TCP4 with CRC32C",
        // length = 12 + 7 = 19 = 0x13; CRC32C of these 35 bytes with the
        // value zeroed is 0x5AF116B6 (worked out with a bitwise CRC32C).
        bytes: hex("\(signatureHex) 21 11 0013  01020304 05060708  3039 0050  03 0004 5AF116B6"),
        encode: { ProxyHeader.encodeV2(source: client4, destination: server4, crc32c: true) },
        decoded: tcp(.v2, client4, server4, tlvs: [ProxyTLV(type: .crc32c, value: [0x5A, 0xF1, 0x16, 0xB6])])
    ),
    Vector(
        name: "v2 LOCAL with CRC32C",
        bytes: hex("\(signatureHex) 20 00 0007  03 0004 A9B87E8F"),
        encode: { ProxyHeader.encodeV2(command: .local, source: nil, destination: nil, crc32c: true) },
        decoded: DecodedProxyHeader(
            version: .v2, command: .local, transport: .unspec, family: .unspec,
            tlvs: [ProxyTLV(type: .crc32c, value: [0xA9, 0xB8, 0x7E, 0x8F])]
        )
    ),
]

/// Valid headers this module never emits but must accept, with their meaning.
let acceptOnlyVectors: [Named<([UInt8], DecodedProxyHeader)>] = [
    Named("v1 TCP6 upper case and leading zeros", (
        ascii("PROXY TCP6 2001:0DB8:0000::0001 2001:DB8::2 40000 443\r\n"),
        tcp(.v1, client6, server6)
    )),
    Named("v1 TCP6 mapped in dotted form", (
        ascii("PROXY TCP6 ::ffff:10.0.0.1 ::FFFF:10.0.0.2 5000 8080\r\n"),
        tcp(.v1, mapped(10, 0, 0, 1, port: 5000), mapped(10, 0, 0, 2, port: 8080))
    )),
    Named("v1 TCP6 without ::", (
        ascii("PROXY TCP6 1:2:3:4:5:6:7:8 8:7:6:5:4:3:2:1 1 2\r\n"),
        tcp(.v1, v6([1, 2, 3, 4, 5, 6, 7, 8], port: 1), v6([8, 7, 6, 5, 4, 3, 2, 1], port: 2))
    )),
    Named("v1 UNKNOWN with the optional fields", (
        ascii("PROXY UNKNOWN ffff::1 ffff::2 65535 65535\r\n"),
        DecodedProxyHeader(version: .v1, transport: .unspec, family: .unspec)
    )),
    Named("v1 longest legal line (107 bytes)", (
        ascii("PROXY UNKNOWN " + String(repeating: "x", count: 91) + "\r\n"),
        DecodedProxyHeader(version: .v1, transport: .unspec, family: .unspec)
    )),
    Named("v2 LOCAL carrying an INET block (ignored)", (
        hex("\(signatureHex) 20 11 000C  01020304 05060708  3039 0050"),
        DecodedProxyHeader(version: .v2, command: .local, transport: .stream, family: .inet)
    )),
    Named("v2 UNIX stream (paths skipped)", (
        hex("\(signatureHex) 21 31 00D8") + Array(repeating: 0x41, count: 216),
        DecodedProxyHeader(version: .v2, command: .proxy, transport: .stream, family: .unix)
    )),
    Named("v2 custom and SSL TLVs passed through", (
        hex("\(signatureHex) 21 11 0016  01020304 05060708  3039 0050  E0 0001 7F  20 0003 010203"),
        tcp(.v2, client4, server4, tlvs: [
            ProxyTLV(type: ProxyTLVType(rawValue: 0xE0), value: [0x7F]),
            ProxyTLV(type: .ssl, value: [1, 2, 3]),
        ])
    )),
    Named("v2 UNIQUE_ID of exactly 128 bytes", (
        hex("\(signatureHex) 21 00 0083  05 0080") + Array(repeating: 0x55, count: 128),
        DecodedProxyHeader(
            version: .v2, command: .proxy, transport: .unspec, family: .unspec,
            tlvs: [ProxyTLV(type: .uniqueID, value: Array(repeating: 0x55, count: 128))]
        )
    )),
]

/// Every valid byte sequence: what the truncation tests cut up.
let allValidInputs: [Named<[UInt8]>] =
    (v1Vectors + v2Vectors).map { Named($0.name, $0.bytes) }
    + acceptOnlyVectors.map { Named($0.name, $0.value.0) }
