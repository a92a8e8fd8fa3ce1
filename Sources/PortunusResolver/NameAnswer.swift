/// One address of a resolved name, without a port: the engine adds the target's port.
public struct ResolvedAddress: Sendable, Equatable, CustomStringConvertible {
    public let isIPv6: Bool
    /// The address bytes in network order, stored inline: the first 4 bytes (IPv4) or
    /// all 16 (IPv6), the rest zero.
    public let words: (UInt64, UInt64)

    public static func == (a: ResolvedAddress, b: ResolvedAddress) -> Bool {
        a.isIPv6 == b.isIPv6 && a.words == b.words
    }

    public init(ipv4 octets: [UInt8]) {
        precondition(octets.count == 4)
        self = octets.withUnsafeBytes { ResolvedAddress(isIPv6: false, raw: $0) }
    }

    public init(ipv6 octets: [UInt8]) {
        precondition(octets.count == 16)
        self = octets.withUnsafeBytes { ResolvedAddress(isIPv6: true, raw: $0) }
    }

    init(isIPv6: Bool, raw: UnsafeRawBufferPointer) {
        self.isIPv6 = isIPv6
        var words: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: raw) }
        self.words = words
    }

    /// Dotted quad, or the RFC 5952 form of IPv6 (for logs).
    public var description: String { AddressText.format(self) }
}

/// What the resolver knows of one name, as handed to a worker: a snapshot it keeps in
/// its own cache until `freshUntilMs`. Times are CLOCK_MONOTONIC_COARSE milliseconds,
/// the workers' clock.
public struct NameAnswer: Sendable, Equatable {
    /// Index of the name in the list the resolver was made with.
    public let name: Int
    /// IPv4 addresses first, then IPv6, each in the order the server gave them; empty
    /// when the name never resolved (or its answers were evicted from the cache).
    public let addresses: [ResolvedAddress]
    /// How many of `addresses` are IPv4 (they come first).
    public let ipv4Count: Int
    /// The answers are fresh until then (TTL clamped to 5..300 s); 0: none.
    public let freshUntilMs: Int64
    /// The last lookup failed (an error, no address, or no answer in time). The
    /// previous `addresses`, if any, may still be served stale until
    /// `freshUntilMs` + ``ResolverSettings/staleMs``.
    public let failed: Bool
    /// After a failure, the name is not asked again before this.
    public let retryAtMs: Int64

    public init(name: Int, addresses: [ResolvedAddress], ipv4Count: Int, freshUntilMs: Int64, failed: Bool, retryAtMs: Int64) {
        self.name = name
        self.addresses = addresses
        self.ipv4Count = ipv4Count
        self.freshUntilMs = freshUntilMs
        self.failed = failed
        self.retryAtMs = retryAtMs
    }
}

/// The resolver's fixed rules (SPEC.md §6, PORTUNUS_COMPAT.md "Runtime details"), and
/// the servers to ask.
public struct ResolverSettings: Sendable {
    /// `--dns-server` entries; empty: the servers of /etc/resolv.conf.
    public var servers: [DNSServer]
    /// A lookup that has no answer after this fails (its waiters are told at once).
    public var lookupTimeoutMs: Int64 = 3000
    /// Answer TTLs are clamped to this range.
    public var minTTLSeconds: Int64 = 5
    public var maxTTLSeconds: Int64 = 300
    /// A failed name is not asked again for this long.
    public var negativeMs: Int64 = 3000
    /// After a failed refresh, the previous answers stay usable this long past their expiry.
    public var staleMs: Int64 = 30_000
    /// c-ares lookups in flight at once; further names wait in a queue.
    public var maxInFlight = 64
    /// Names whose answers are held; past it the least recently asked one is dropped.
    public var cacheCapacity = 8192
    /// Addresses kept per name (the first ones of each family, IPv4 first).
    public var maxAddressesPerName = 32

    public init(servers: [DNSServer] = []) { self.servers = servers }
}

/// A `--dns-server ADDR[:PORT]` entry: an IPv4 or IPv6 address literal and a port (53
/// when absent). IPv6 with a port is written in brackets: `[::1]:5353`.
public struct DNSServer: Sendable, Equatable, CustomStringConvertible {
    public let address: ResolvedAddress
    public let port: UInt16

    /// Parses `1.2.3.4`, `1.2.3.4:53`, `::1`, `[::1]` or `[::1]:53`; nil if it is none of these.
    public init?(_ text: String) {
        var host = Substring(text)
        var port: UInt16 = 53
        if host.first == "[" {
            guard let close = host.firstIndex(of: "]") else { return nil }
            let rest = host[host.index(after: close)...]
            if !rest.isEmpty {
                guard rest.first == ":", let value = UInt16(rest.dropFirst()), value > 0 else { return nil }
                port = value
            }
            host = host[host.index(after: host.startIndex)..<close]
            guard let address = AddressText.parse(host), address.isIPv6 else { return nil }
            self.address = address
        } else if host.filter({ $0 == ":" }).count == 1 {
            let colon = host.firstIndex(of: ":")!
            guard let value = UInt16(host[host.index(after: colon)...]), value > 0 else { return nil }
            port = value
            guard let address = AddressText.parse(host[..<colon]), !address.isIPv6 else { return nil }
            self.address = address
        } else {
            guard let address = AddressText.parse(host) else { return nil }
            self.address = address
        }
        self.port = port
    }

    /// The form c-ares's server list takes (`1.2.3.4:53`, `[::1]:53`).
    public var description: String { address.isIPv6 ? "[\(address)]:\(port)" : "\(address):\(port)" }
}
