@testable import PortunusProxyProtocol
import Testing

/// Formats through the module's writer into a scratch array.
private func text(_ address: ProxyAddress) -> String {
    var bytes = [UInt8](repeating: 0, count: AddressText.maxLength)
    let length = bytes.withUnsafeMutableBytes { buffer -> Int in
        var writer = ByteWriter(buffer)
        AddressText.write(address, to: &writer)
        return writer.offset
    }
    return String(decoding: bytes[..<length], as: UTF8.self)
}

private func parse6(_ text: String) -> ProxyAddress? {
    Array(text.utf8).withUnsafeBytes { AddressText.parseIPv6($0) }
        .map { ProxyAddress(ipv6High: $0.high, low: $0.low, port: 0) }
}

@Suite("Address text")
struct AddressTextTests {
    // RFC 5952 section 4: the canonical text of each address.
    static let canonical: [Named<([UInt16], String)>] = [
        Named("compress the run", ([0x2001, 0xDB8, 0, 0, 0, 0, 2, 1], "2001:db8::2:1")),
        Named("lower case, no leading zeros", ([0x2001, 0x0DB8, 0xABCD, 0x00EF, 1, 2, 3, 4], "2001:db8:abcd:ef:1:2:3:4")),
        Named("single zero group not compressed (4.2.2)", ([0x2001, 0xDB8, 0, 1, 1, 1, 1, 1], "2001:db8:0:1:1:1:1:1")),
        Named("longest run wins (4.2.3)", ([0x2001, 0, 0, 1, 0, 0, 0, 1], "2001:0:0:1::1")),
        Named("first of equal runs wins (4.2.3)", ([0x2001, 0xDB8, 0, 0, 1, 0, 0, 1], "2001:db8::1:0:0:1")),
        Named("unspecified", ([0, 0, 0, 0, 0, 0, 0, 0], "::")),
        Named("loopback", ([0, 0, 0, 0, 0, 0, 0, 1], "::1")),
        Named("run at the end", ([1, 0, 0, 0, 0, 0, 0, 0], "1::")),
        Named("run of two at the end", ([1, 2, 3, 4, 5, 6, 0, 0], "1:2:3:4:5:6::")),
        Named("link local", ([0xFE80, 0, 0, 0, 0, 0, 0x1, 0x2], "fe80::1:2")),
        Named("no zeros", ([0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF], "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
        Named("IPv4-mapped in mixed notation (section 5)", ([0, 0, 0, 0, 0, 0xFFFF, 0xC000, 0x0201], "::ffff:192.0.2.1")),
        Named("IPv4-compatible stays hex", ([0, 0, 0, 0, 0, 0, 0xC000, 0x0201], "::c000:201")),
    ]

    @Test("IPv6 is written as RFC 5952 says", arguments: canonical)
    func canonicalText(_ testCase: Named<([UInt16], String)>) {
        let (groups, expected) = testCase.value
        let address = v6(groups, port: 0)
        #expect(text(address) == expected)
        #expect(parse6(expected) == address)
    }

    @Test("IPv4 is dotted decimal without leading zeros")
    func ipv4Text() {
        #expect(text(v4(0, 0, 0, 0, port: 0)) == "0.0.0.0")
        #expect(text(v4(10, 0, 100, 255, port: 0)) == "10.0.100.255")
    }

    static let equivalentIPv6: [Named<(String, [UInt16])>] = [
        Named("full form", ("2001:0db8:0000:0000:0000:0000:0000:0001", [0x2001, 0xDB8, 0, 0, 0, 0, 0, 1])),
        Named("upper case", ("2001:DB8::A", [0x2001, 0xDB8, 0, 0, 0, 0, 0, 0xA])),
        Named(":: standing for one group", ("1:2:3:4:5:6:7::", [1, 2, 3, 4, 5, 6, 7, 0])),
        Named(":: in the middle", ("1::8", [1, 0, 0, 0, 0, 0, 0, 8])),
        Named("dotted tail", ("::ffff:1.2.3.4", [0, 0, 0, 0, 0, 0xFFFF, 0x0102, 0x0304])),
        Named("dotted tail after six groups", ("1:2:3:4:5:6:1.2.3.4", [1, 2, 3, 4, 5, 6, 0x0102, 0x0304])),
    ]

    @Test("non-canonical IPv6 text parses to the right address", arguments: equivalentIPv6)
    func parsesEquivalents(_ testCase: Named<(String, [UInt16])>) {
        let (input, groups) = testCase.value
        #expect(parse6(input) == v6(groups, port: 0))
    }

    @Test("ports: 0...65535, no leading zeros",
          arguments: [("0", 0), ("1", 1), ("80", 80), ("65535", 65535), ("00", nil), ("01", nil),
                      ("65536", nil), ("", nil), ("123456", nil), (" 1", nil)] as [(String, UInt16?)])
    func ports(_ input: String, _ expected: UInt16?) {
        #expect(Array(input.utf8).withUnsafeBytes { AddressText.parsePort($0) } == expected)
    }
}
