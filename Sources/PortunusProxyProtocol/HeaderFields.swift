// The small closed value sets of a PROXY header. Raw values are the v2 wire
// nibbles, so the v2 codec converts with `init(rawValue:)` and nothing else.

/// Which PROXY protocol version a header uses.
public enum ProxyVersion: UInt8, Sendable, Hashable {
    /// The text form, `PROXY TCP4 ...\r\n`.
    case v1 = 1
    /// The binary form with the 12-byte signature.
    case v2 = 2
}

/// The v2 command (low nibble of byte 13). v1 headers always decode as
/// `.proxy`.
public enum ProxyCommand: UInt8, Sendable, Hashable {
    /// The forwarder opened the connection itself (a health check): the
    /// receiver uses the real endpoints and ignores any addresses.
    case local = 0x0
    /// The connection is relayed on behalf of the client the addresses name.
    case proxy = 0x1
}

/// The v2 transport protocol (low nibble of byte 14).
public enum ProxyTransport: UInt8, Sendable, Hashable {
    /// Unknown or unsupported; the header carries no addresses.
    case unspec = 0x0
    /// `SOCK_STREAM`: TCP (or a UNIX stream socket).
    case stream = 0x1
    /// `SOCK_DGRAM`: UDP (or a UNIX datagram socket).
    case dgram = 0x2
}

/// The v2 address family (high nibble of byte 14).
public enum ProxyAddressFamily: UInt8, Sendable, Hashable {
    /// No addresses (LOCAL, v1 `UNKNOWN`, or a family the sender cannot name).
    case unspec = 0x0
    /// IPv4: 4-byte addresses plus ports.
    case inet = 0x1
    /// IPv6: 16-byte addresses plus ports.
    case inet6 = 0x2
    /// UNIX sockets: two 108-byte paths. Decoded and skipped; ``ProxyAddress``
    /// cannot hold a path, so such headers decode with no source or destination.
    case unix = 0x3

    /// Bytes the v2 address block takes for this family.
    var v2AddressLength: Int {
        switch self {
        case .unspec: return 0
        case .inet: return 12
        case .inet6: return 36
        case .unix: return 216
        }
    }
}
