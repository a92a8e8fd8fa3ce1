/// An IPv4 or IPv6 address plus a TCP/UDP port: one end of a proxied
/// connection, as `getpeername()` / `getsockname()` report it.
///
/// Stored inline in two 64-bit words, so building and copying one never
/// touches the heap. Ports are in host byte order (convert `sin_port` with
/// `UInt16(bigEndian:)`).
public struct ProxyAddress: Sendable, Hashable {
    /// The address family; the octet count follows from it (4 or 16).
    public enum Family: Sendable, Hashable {
        /// IPv4, 4 octets (`AF_INET`).
        case ipv4
        /// IPv6, 16 octets (`AF_INET6`).
        case ipv6
    }

    /// IPv4 or IPv6.
    public let family: Family
    /// The port in host byte order.
    public var port: UInt16

    // Octets 0..<8 of an IPv6 address, big-endian; always 0 for IPv4.
    @usableFromInline let high: UInt64
    // Octets 8..<16 of an IPv6 address, or the IPv4 address in the low 32
    // bits, big-endian (so 1.2.3.4 is 0x01020304).
    @usableFromInline let low: UInt64

    @usableFromInline
    init(family: Family, high: UInt64, low: UInt64, port: UInt16) {
        self.family = family
        self.high = high
        self.low = low
        self.port = port
    }

    /// An IPv4 address from its numeric value in host byte order
    /// (`0x7F00_0001` is 127.0.0.1; from `sin_addr.s_addr` use
    /// `UInt32(bigEndian: s_addr)`).
    public init(ipv4 value: UInt32, port: UInt16) {
        self.init(family: .ipv4, high: 0, low: UInt64(value), port: port)
    }

    /// An IPv4 address from its four octets, most significant first:
    /// `ProxyAddress(ipv4: (1, 2, 3, 4), port: 80)` is 1.2.3.4:80.
    public init(ipv4 octets: (UInt8, UInt8, UInt8, UInt8), port: UInt16) {
        let value = UInt32(octets.0) << 24 | UInt32(octets.1) << 16
            | UInt32(octets.2) << 8 | UInt32(octets.3)
        self.init(ipv4: value, port: port)
    }

    /// An IPv6 address from its two 64-bit halves in host byte order
    /// (`high` holds octets 0..<8, most significant first).
    public init(ipv6High high: UInt64, low: UInt64, port: UInt16) {
        self.init(family: .ipv6, high: high, low: low, port: port)
    }

    /// An IPv4 address from exactly 4 octets in network order, or `nil` for
    /// any other count.
    @inlinable
    public init?(ipv4 octets: some Collection<UInt8>, port: UInt16) {
        guard octets.count == 4 else { return nil }
        var value: UInt64 = 0
        for octet in octets { value = value << 8 | UInt64(octet) }
        self.init(family: .ipv4, high: 0, low: value, port: port)
    }

    /// An IPv6 address from exactly 16 octets in network order (for example
    /// the bytes of an `in6_addr`), or `nil` for any other count.
    @inlinable
    public init?(ipv6 octets: some Collection<UInt8>, port: UInt16) {
        guard octets.count == 16 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        var index = 0
        for octet in octets {
            if index < 8 {
                high = high << 8 | UInt64(octet)
            } else {
                low = low << 8 | UInt64(octet)
            }
            index += 1
        }
        self.init(family: .ipv6, high: high, low: low, port: port)
    }

    /// An address from raw octets in network order: 4 octets make IPv4,
    /// 16 make IPv6, any other count gives `nil`.
    @inlinable
    public init?(octets: some Collection<UInt8>, port: UInt16) {
        switch octets.count {
        case 4: self.init(ipv4: octets, port: port)
        case 16: self.init(ipv6: octets, port: port)
        default: return nil
        }
    }

    /// The address octets in network order (4 or 16 of them), without
    /// allocating.
    public var octets: Octets { Octets(address: self) }

    /// The IPv4 address as a host-order integer, or `nil` for IPv6.
    public var ipv4Value: UInt32? {
        family == .ipv4 ? UInt32(truncatingIfNeeded: low) : nil
    }

    /// True for an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`), which a
    /// dual-stack socket reports for IPv4 peers.
    public var isIPv4Mapped: Bool {
        family == .ipv6 && high == 0 && low >> 32 == 0xFFFF
    }

    /// The plain IPv4 address behind an IPv4-mapped IPv6 one (same port);
    /// the address itself when it is already IPv4; `nil` for other IPv6.
    public var unmappedIPv4: ProxyAddress? {
        switch family {
        case .ipv4: return self
        case .ipv6:
            guard isIPv4Mapped else { return nil }
            return ProxyAddress(ipv4: UInt32(truncatingIfNeeded: low), port: port)
        }
    }

    /// Octet `index` (0-based, network order) of the address.
    @inline(__always)
    func octet(_ index: Int) -> UInt8 {
        switch family {
        case .ipv4:
            return UInt8(truncatingIfNeeded: low >> UInt64(8 * (3 - index)))
        case .ipv6:
            let word = index < 8 ? high : low
            return UInt8(truncatingIfNeeded: word >> UInt64(8 * (7 - index % 8)))
        }
    }

    /// 16-bit group `index` (0..<8) of an IPv6 address.
    @inline(__always)
    func group(_ index: Int) -> UInt16 {
        let word = index < 4 ? high : low
        return UInt16(truncatingIfNeeded: word >> UInt64(16 * (3 - index % 4)))
    }

    /// The octets of a ``ProxyAddress``: a random-access view over the inline
    /// storage, so reading them never allocates.
    public struct Octets: RandomAccessCollection, Sendable {
        let address: ProxyAddress

        /// Always 0.
        public var startIndex: Int { 0 }
        /// 4 for IPv4, 16 for IPv6.
        public var endIndex: Int { address.family == .ipv4 ? 4 : 16 }

        /// Octet `position` in network order.
        public subscript(position: Int) -> UInt8 {
            precondition(position >= 0 && position < endIndex, "octet index out of range")
            return address.octet(position)
        }
    }
}

extension ProxyAddress: CustomStringConvertible {
    /// `1.2.3.4:80` or `[2001:db8::1]:443`, with the address written exactly
    /// as the v1 header writes it.
    public var description: String {
        var text = ""
        withUnsafeTemporaryAllocation(byteCount: AddressText.maxLength, alignment: 1) { scratch in
            var writer = ByteWriter(scratch)
            AddressText.write(self, to: &writer)
            text = String(decoding: UnsafeRawBufferPointer(rebasing: scratch[..<writer.offset]), as: UTF8.self)
        }
        return family == .ipv4 ? "\(text):\(port)" : "[\(text)]:\(port)"
    }
}
