import CLiburing

/// An IPv4 or IPv6 socket address (C `sockaddr_in` / `sockaddr_in6`), as a value.
/// The address bytes are stored inline, so reading a peer address per connection
/// allocates nothing.
public struct SocketAddress: Equatable, Sendable, BitwiseCopyable, CustomStringConvertible {
    /// The address family.
    public enum Family: Sendable, BitwiseCopyable { case ipv4, ipv6 }

    public let family: Family
    public let port: UInt16
    /// Address bytes in network order: the first 4 (IPv4) or all 16 (IPv6).
    private var storage: (UInt64, UInt64) = (0, 0)
    /// IPv6 scope (interface) ID: link-local `fe80::1%eth0` and `fe80::1%eth1` are
    /// different peers. 0 for IPv4 and for global IPv6 addresses.
    public private(set) var scopeID: UInt32 = 0

    public static func == (a: SocketAddress, b: SocketAddress) -> Bool {
        a.family == b.family && a.port == b.port && a.storage == b.storage && a.scopeID == b.scopeID
    }

    public init(ipv4 octets: [UInt8], port: UInt16) {
        precondition(octets.count == 4)
        family = .ipv4; self.port = port
        withUnsafeMutableBytes(of: &storage) { $0.copyBytes(from: octets) }
    }

    public init(ipv6 octets: [UInt8], port: UInt16) {
        precondition(octets.count == 16)
        family = .ipv6; self.port = port
        withUnsafeMutableBytes(of: &storage) { $0.copyBytes(from: octets) }
    }

    /// From address bytes stored as two words in network order (the first 4 bytes for
    /// IPv4): allocates nothing, for addresses built per connection.
    public init(family: Family, addressWords: (UInt64, UInt64), port: UInt16, scopeID: UInt32 = 0) {
        self.family = family; self.port = port
        storage = addressWords
        self.scopeID = scopeID
    }

    private init(family: Family, port: UInt16, bytes: UnsafeRawBufferPointer) {
        self.family = family; self.port = port
        withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: bytes) }
    }

    /// Number of address bytes: 4 or 16.
    public var octetCount: Int { family == .ipv4 ? 4 : 16 }

    /// The address bytes, without allocating.
    public func withOctets<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeBytes(of: storage) { try body(UnsafeRawBufferPointer(rebasing: $0[0..<octetCount])) }
    }

    /// The address bytes as an array (allocates; not for the hot path).
    public var octets: [UInt8] { withOctets { Array($0) } }

    /// `127.0.0.1` / `::1` with `port`.
    public static func loopback(_ family: Family, port: UInt16) -> SocketAddress {
        family == .ipv4
            ? SocketAddress(ipv4: [127, 0, 0, 1], port: port)
            : SocketAddress(ipv6: [UInt8](repeating: 0, count: 15) + [1], port: port)
    }

    /// An IPv6 address of the form `::ffff:a.b.c.d` (a v4 client on a dual-stack socket).
    public var isIPv4Mapped: Bool {
        family == .ipv6 && storage.0 == 0 && UInt32(truncatingIfNeeded: storage.1) == UInt32(0xFFFF_0000).bigEndian
    }

    public var description: String {
        switch family {
        case .ipv4: return "\(Self.text(of: self)):\(port)"
        case .ipv6: return "[\(Self.text(of: self))]:\(port)"
        }
    }

    /// inet_ntop text form (RFC 5952 for IPv6).
    static func text(of address: SocketAddress) -> String {
        var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        address.withOctets { raw in
            _ = inet_ntop(address.family == .ipv4 ? AF_INET : AF_INET6, raw.baseAddress, &out, socklen_t(out.count))
        }
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Writes the C form into `storage`; returns its length.
    func write(to storage: UnsafeMutablePointer<sockaddr_storage>) -> socklen_t {
        storage.initialize(to: sockaddr_storage())
        switch family {
        case .ipv4:
            return storage.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                sin.pointee.sin_family = sa_family_t(AF_INET)
                sin.pointee.sin_port = port.bigEndian
                withUnsafeMutableBytes(of: &sin.pointee.sin_addr) { dst in withOctets { dst.copyMemory(from: $0) } }
                return socklen_t(MemoryLayout<sockaddr_in>.size)
            }
        case .ipv6:
            return storage.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                sin6.pointee.sin6_family = sa_family_t(AF_INET6)
                sin6.pointee.sin6_port = port.bigEndian
                sin6.pointee.sin6_scope_id = scopeID
                withUnsafeMutableBytes(of: &sin6.pointee.sin6_addr) { dst in withOctets { dst.copyMemory(from: $0) } }
                return socklen_t(MemoryLayout<sockaddr_in6>.size)
            }
        }
    }

    /// Reads the C form; nil for families other than INET/INET6.
    init?(reading storage: UnsafePointer<sockaddr_storage>) {
        switch Int32(storage.pointee.ss_family) {
        case AF_INET:
            let sin = UnsafeRawPointer(storage).load(as: sockaddr_in.self)
            let addr = sin.sin_addr
            self = withUnsafeBytes(of: addr) { SocketAddress(family: .ipv4, port: UInt16(bigEndian: sin.sin_port), bytes: $0) }
        case AF_INET6:
            let sin6 = UnsafeRawPointer(storage).load(as: sockaddr_in6.self)
            let addr = sin6.sin6_addr
            self = withUnsafeBytes(of: addr) { SocketAddress(family: .ipv6, port: UInt16(bigEndian: sin6.sin6_port), bytes: $0) }
            scopeID = sin6.sin6_scope_id
        default:
            return nil
        }
    }
}

/// Socket addresses at fixed heap addresses, for IORING_OP_CONNECT, which may read the
/// address after the prepare call returns. Built once at start-up; never shrinks.
public final class SocketAddressTable {
    private let storage: UnsafeMutablePointer<sockaddr_storage>
    private let lengths: UnsafeMutablePointer<socklen_t>
    public let capacity: Int
    public private(set) var count = 0

    public init(capacity: Int) {
        self.capacity = max(capacity, 1)
        storage = .allocate(capacity: self.capacity)
        lengths = .allocate(capacity: self.capacity)
    }

    deinit {
        storage.deallocate()
        lengths.deallocate()
    }

    /// Appends `address`; returns its index.
    @discardableResult
    public func append(_ address: SocketAddress) -> Int {
        precondition(count < capacity, "SocketAddressTable is full")
        lengths[count] = address.write(to: storage + count)
        count += 1
        return count - 1
    }

    /// Writes entry `index` (below ``capacity``): a per-slot address, rewritten per
    /// dial, only while no connect that names it is in flight.
    public func set(_ index: Int, _ address: SocketAddress) {
        precondition(index < capacity)
        lengths[index] = address.write(to: storage + index)
        count = max(count, index + 1)
    }

    public subscript(index: Int) -> SocketAddress {
        SocketAddress(reading: storage + index)!
    }

    func sockaddrPointer(_ index: Int) -> UnsafeMutablePointer<sockaddr> {
        precondition(index < count)
        return UnsafeMutableRawPointer(storage + index).assumingMemoryBound(to: sockaddr.self)
    }

    func length(_ index: Int) -> socklen_t { lengths[index] }
}

/// A `__kernel_timespec` at a fixed address, for (link) timeouts.
public final class PinnedTimeout {
    let pointer: UnsafeMutablePointer<__kernel_timespec>
    public let milliseconds: Int

    public init(milliseconds: Int) {
        self.milliseconds = milliseconds
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: __kernel_timespec(tv_sec: Int64(milliseconds / 1000), tv_nsec: Int64(milliseconds % 1000) * 1_000_000))
    }

    deinit { pointer.deallocate() }
}
