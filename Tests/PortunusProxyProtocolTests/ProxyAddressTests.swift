@testable import PortunusProxyProtocol
import Testing

@Suite("ProxyAddress")
struct ProxyAddressTests {
    @Test("the initialisers agree with each other")
    func initialisersAgree() {
        let fromTuple = ProxyAddress(ipv4: (192, 0, 2, 1), port: 80)
        #expect(ProxyAddress(ipv4: 0xC000_0201, port: 80) == fromTuple)
        #expect(ProxyAddress(ipv4: [192, 0, 2, 1], port: 80) == fromTuple)
        #expect(ProxyAddress(octets: [192, 0, 2, 1], port: 80) == fromTuple)
        #expect(fromTuple.ipv4Value == 0xC000_0201)
        #expect(Array(fromTuple.octets) == [192, 0, 2, 1])

        let octets: [UInt8] = [0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xAB, 0xCD]
        let fromArray = ProxyAddress(ipv6: octets, port: 443)
        #expect(fromArray == ProxyAddress(ipv6High: 0x2001_0DB8_0000_0000, low: 0x0000_0000_0000_ABCD, port: 443))
        #expect(ProxyAddress(octets: octets, port: 443) == fromArray)
        #expect(fromArray.map { Array($0.octets) } == octets)
        #expect(fromArray?.ipv4Value == nil)
        // Raw bytes straight from a C struct (an in6_addr here) need no copy.
        let fromRaw = octets.withUnsafeBytes { ProxyAddress(ipv6: $0, port: 443) }
        #expect(fromRaw == fromArray)
    }

    @Test("wrong octet counts give nil", arguments: [0, 1, 3, 5, 8, 15, 17, 32])
    func wrongCounts(_ count: Int) {
        let octets = [UInt8](repeating: 1, count: count)
        #expect(ProxyAddress(ipv4: octets, port: 1) == nil || count == 4)
        #expect(ProxyAddress(ipv6: octets, port: 1) == nil)
        #expect(ProxyAddress(octets: octets, port: 1) == nil)
    }

    @Test("IPv4-mapped detection and unmapping")
    func mapping() {
        let mappedAddress = mapped(10, 1, 2, 3, port: 99)
        #expect(mappedAddress.isIPv4Mapped)
        #expect(mappedAddress.unmappedIPv4 == v4(10, 1, 2, 3, port: 99))
        #expect(v4(10, 1, 2, 3, port: 99).unmappedIPv4 == v4(10, 1, 2, 3, port: 99))
        // ::a.b.c.d (IPv4-compatible, deprecated) and ::ffff:0:a.b.c.d
        // (IPv4-translated) are not mapped addresses.
        #expect(!v6([0, 0, 0, 0, 0, 0, 0x0A01, 0x0203], port: 1).isIPv4Mapped)
        #expect(!v6([0, 0, 0, 0, 0xFFFF, 0, 0x0A01, 0x0203], port: 1).isIPv4Mapped)
        #expect(v6([0, 0, 0, 0, 0, 0, 0, 1], port: 1).unmappedIPv4 == nil)
        // Same octets, different family: not equal.
        #expect(v4(0, 0, 0, 1, port: 1) != v6([0, 0, 0, 0, 0, 0, 0, 1], port: 1))
    }

    @Test("description uses the v1 text forms")
    func description() {
        #expect(v4(1, 2, 3, 4, port: 80).description == "1.2.3.4:80")
        #expect(v6([0x2001, 0xDB8, 0, 0, 0, 0, 0, 1], port: 443).description == "[2001:db8::1]:443")
    }
}
