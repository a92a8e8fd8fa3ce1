// Address literals, DNS names and port ranges: the value types the engine
// dials with, tested directly and through the `target` / `host` keys.
import PortunusConfig
import Testing

@Suite("IPv4Address")
struct IPv4AddressTests {
    @Test("valid dotted quads", arguments: [
        ("0.0.0.0", [0, 0, 0, 0] as [UInt8], UInt32(0)),
        ("10.0.0.1", [10, 0, 0, 1], 0x0A00_0001),
        ("192.168.100.254", [192, 168, 100, 254], 0xC0A8_64FE),
        ("255.255.255.255", [255, 255, 255, 255], 0xFFFF_FFFF),
    ])
    func valid(text: String, octets: [UInt8], value: UInt32) throws {
        let address = try #require(IPv4Address(text))
        #expect(address.octets == octets)
        #expect(address.value == value)
        #expect(address.description == text)
        #expect(address == IPv4Address(octets[0], octets[1], octets[2], octets[3]))
    }

    @Test("rejected", arguments: [
        "", "1.2.3", "1.2.3.4.5", "010.0.0.1", "1.2.3.04", "00.1.2.3", "256.0.0.1", "1.2.3.1000",
        "1..2.3", "1.2.3.", ".1.2.3", "a.b.c.d", "1.2.3.-4", " 1.2.3.4", "1.2.3.4 ", "0x7f.0.0.1", "１.2.3.4",
    ])
    func invalid(_ text: String) {
        #expect(IPv4Address(text) == nil)
    }
}

@Suite("IPv6Address")
struct IPv6AddressTests {
    /// Input and its RFC 5952 canonical text.
    @Test("canonical text (RFC 5952)", arguments: [
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("2001:0db8:0000:0000:0000:0000:0002:0001", "2001:db8::2:1"),
        ("2001:DB8::AbCd", "2001:db8::abcd"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),      // first of two equal runs
        ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),                  // the longer run wins
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),   // a single zero group stays
        ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
        ("fe80::", "fe80::"),
        ("0:0:0:0:0:0:0:0", "::"),
        ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"),
        ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),
        ("::ffff:c000:0201", "::ffff:192.0.2.1"),
        ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
        ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"),
    ])
    func canonical(input: String, expected: String) throws {
        let address = try #require(IPv6Address(input))
        #expect(address.description == expected)
        #expect(IPv6Address(expected) == address, "canonical text parses back to the same address")
    }

    @Test("rejected", arguments: [
        "", ":", ":::", "1::2::3", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7::8", "12345::",
        "g::", ":1::", "1::2:", "::1:", "1.2.3.4", "::1.2.3", "::ffff:256.1.1.1", "::1.2.3.4:5",
        "1.2.3.4::", "fe80::1%eth0", "[::1]", " ::1", "::01234",
    ])
    func invalid(_ text: String) {
        #expect(IPv6Address(text) == nil)
    }

    @Test func octetsRoundTrip() throws {
        let address = try #require(IPv6Address("2001:db8::ff00:42:8329"))
        #expect(address.octets == [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0xff, 0x00, 0x00, 0x42, 0x83, 0x29])
        #expect(IPv6Address(octets: address.octets) == address)
        #expect(address.isIPv4Mapped == false)
        #expect(IPv6Address("::ffff:10.0.0.1")?.isIPv4Mapped == true)
    }
}

@Suite("Target hosts")
struct TargetHostTests {
    private func host(target: String) throws -> TargetHost {
        try parseValid(rule("r", "listen_port = 1000\ntarget = \"\(target)\"")).rules[0].targets[0].host
    }

    private func host(table: String) throws -> TargetHost {
        try parseValid(rule("r", "listen_port = 1000\ntargets = [ { host = \"\(table)\", port = 1 } ]"))
            .rules[0].targets[0].host
    }

    @Test func ipv4Target() throws {
        #expect(try host(target: "10.0.0.5:22") == .ipv4(IPv4Address(10, 0, 0, 5)))
    }

    @Test func bracketedIPv6Target() throws {
        let config = try parseValid(rule("r", "listen_port = 1000\ntarget = \"[::1]:80\""))
        #expect(config.rules[0].targets[0].host == .ipv6(IPv6Address("::1")!))
        #expect(config.rules[0].targets[0].ports == PortRange(port: 80))
        #expect(config.rules[0].targets[0].description == "[::1]:80")
    }

    @Test func bracketedIPv6TargetIsCanonicalised() throws {
        #expect(try host(target: "[2001:DB8:0::1]:443").description == "[2001:db8::1]")
    }

    @Test func tableHostTakesIPv6WithOrWithoutBrackets() throws {
        #expect(try host(table: "2001:db8::5") == .ipv6(IPv6Address("2001:db8::5")!))
        #expect(try host(table: "[::1]") == .ipv6(IPv6Address("::1")!))
        #expect(try host(table: "192.0.2.7") == .ipv4(IPv4Address(192, 0, 2, 7)))
    }

    @Test("names are case-folded and lose their trailing dot", arguments: [
        ("backend.internal", "backend.internal"),
        ("Backend.Example.", "backend.example"),
        ("DB.INTERNAL", "db.internal"),
        ("localhost", "localhost"),
        ("a-b.c-d.e", "a-b.c-d.e"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("1host.example", "1host.example"),
        ("10.0.0.1.nip.io", "10.0.0.1.nip.io"),
    ])
    func names(input: String, expected: String) throws {
        #expect(try host(target: input + ":80") == .name(expected))
        #expect(try host(table: input) == .name(expected))
    }

    @Test func longestValidName() throws {
        // 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 characters, labels at the 63 limit.
        let label = String(repeating: "a", count: 63)
        let name = [label, label, label, String(repeating: "b", count: 61)].joined(separator: ".")
        #expect(name.count == 253)
        #expect(try host(target: name + ":80") == .name(name))
        #expect(try host(target: name + ".:80") == .name(name), "trailing dot is not counted")
    }

    static let invalidTargets: [InvalidCase] = [
        ("::1:80", ["bracket IPv6 addresses: [::1]:80"]),
        ("2001:db8::1", ["bracket IPv6 addresses"]),
        ("[::g]:80", ["bracketed IPv6"]),
        ("[::1:80", ["]"]),
        ("[10.0.0.1]:80", ["bracketed IPv6"]),
        ("010.0.0.1:80", ["leading zero"]),
        ("256.0.0.1:80", ["256"]),
        ("1.2.3:80", ["4 dot-separated octets"]),
        ("-bad.example:80", ["-"]),
        ("bad-.example:80", ["-"]),
        ("a..b:80", ["empty label"]),
        ("under_score.example:80", ["_"]),
        ("ünï.example:80", ["xn--"]),
        (":80", ["host is empty"]),
        (".:80", ["empty"]),
        ("\(String(repeating: "a", count: 64)).example:80", ["63"]),
        ("\(Array(repeating: "abcdefghi", count: 26).joined(separator: ".")):80", ["253"]),
    ].map { target, fragments in
        InvalidCase("target \(target.prefix(40))", rule("r", "listen_port = 1000\ntarget = \"\(target)\""),
                    Expected("validation.host_invalid", rule: "r", key: "target"), messageContains: fragments)
    }

    @Test("invalid target hosts", arguments: invalidTargets)
    func invalidTarget(_ testCase: InvalidCase) { check(testCase) }

    static let invalidTableHosts: [InvalidCase] = [
        ("", ["empty"]),
        ("10.0.0.1:443", ["must not include a port"]),
        ("[::1", ["]"]),
        ("fe80::1%eth0", ["zone"]),
        ("::g", ["not a valid IPv6"]),
        ("999.1.1.1", ["999"]),
        ("bad host", [#"contains " ""#]),
    ].map { host, fragments in
        InvalidCase("host \(host)", rule("r", "listen_port = 1\ntargets = [ { host = \"\(host)\", port = 1 } ]"),
                    Expected("validation.host_invalid", rule: "r", key: "targets[0].host"),
                    messageContains: fragments)
    }

    @Test("invalid table hosts", arguments: invalidTableHosts)
    func invalidTable(_ testCase: InvalidCase) { check(testCase) }
}

@Suite("PortRange")
struct PortRangeTests {
    @Test func counts() {
        #expect(PortRange(port: 80).count == 1)
        #expect(PortRange(lower: 8000, upper: 8009).count == 10)
        #expect(PortRange(lower: 0, upper: 65535).count == 65536)
    }

    @Test("overlaps", arguments: [
        (PortRange(lower: 10, upper: 20), PortRange(lower: 20, upper: 30), true),
        (PortRange(lower: 10, upper: 20), PortRange(lower: 21, upper: 30), false),
        (PortRange(lower: 10, upper: 20), PortRange(lower: 12, upper: 13), true),
        (PortRange(lower: 10, upper: 20), PortRange(port: 9), false),
        (PortRange(port: 80), PortRange(port: 80), true),
    ])
    func overlaps(a: PortRange, b: PortRange, expected: Bool) {
        #expect(a.overlaps(b) == expected)
        #expect(b.overlaps(a) == expected, "overlap is symmetric")
    }

    @Test func offsets() {
        let range = PortRange(lower: 9000, upper: 9009)
        #expect(range.port(atOffset: 0) == 9000)
        #expect(range.port(atOffset: 9) == 9009)
        #expect(range.offset(of: 9005) == 5)
        #expect(range.offset(of: 8999) == nil)
        #expect(range.contains(9009) && !range.contains(9010))
        #expect(PortRange(port: 65535).port(atOffset: 0) == 65535)
    }

    @Test func descriptions() {
        #expect(PortRange(port: 80).description == "80")
        #expect(PortRange(lower: 1, upper: 1).description == "1")
        #expect(PortRange(lower: 8000, upper: 8009).description == "8000-8009")
    }
}
