// A local address and port to listen on: `[metrics] listen` and `--metrics-listen`.
// Strict like target hosts: an IP literal only (no name, so nothing is resolved at
// start-up), the port always written, IPv6 always bracketed.

/// An IPv4 or IPv6 address and a port (1-65535) a local server binds to; the C
/// counterpart is `sockaddr_in` / `sockaddr_in6`. Written `A.B.C.D:PORT` or `[IPv6]:PORT`.
public struct ListenAddress: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The address: IPv4 or IPv6, never a name.
    public enum Host: Sendable, Equatable, Hashable {
        case ipv4(IPv4Address)
        case ipv6(IPv6Address)
    }

    public let host: Host
    /// Never 0: an ephemeral port would leave the scraper nothing to point at.
    public let port: UInt16

    /// Creates an address from parts; `port` must not be 0.
    public init(host: Host, port: UInt16) {
        precondition(port != 0, "a listen address needs a port of 1-65535")
        self.host = host
        self.port = port
    }

    /// Parses `A.B.C.D:PORT` or `[IPv6]:PORT`; nil when it is neither (see
    /// ``parse(_:)`` for the reason in words).
    public init?(_ text: String) {
        guard case .success(let address) = Self.parse(text) else { return nil }
        self = address
    }

    /// `127.0.0.1:9300` or `[::1]:9300` (RFC 5952 form for IPv6): what parses back to it.
    public var description: String {
        switch host {
        case let .ipv4(address): "\(address):\(port)"
        case let .ipv6(address): "[\(address)]:\(port)"
        }
    }

    /// Parses `text`, or explains in words an operator can act on why it is not
    /// `A.B.C.D:PORT` or `[IPv6]:PORT`.
    public static func parse(_ text: String) -> Result<ListenAddress, ListenAddressError> {
        let shape = "expected \"A.B.C.D:PORT\" or \"[IPv6]:PORT\", e.g. \"127.0.0.1:9300\""
        let whole = Substring(text)
        let hostPart: Substring, portPart: Substring
        let host: Host
        if whole.first == "[" {
            guard let close = whole.firstIndex(of: "]") else {
                return .failure(ListenAddressError("\(quoted(text)): missing \"]\" after a bracketed IPv6 address; \(shape)"))
            }
            hostPart = whole[whole.index(after: whole.startIndex)..<close]
            let rest = whole[whole.index(after: close)...]
            guard rest.first == ":" else {
                return .failure(ListenAddressError("\(quoted(text)) has no \":PORT\" after \"]\"; \(shape)"))
            }
            portPart = rest.dropFirst()
            switch IPv6Address.parse(hostPart) {
            case .success(let address): host = .ipv6(address)
            case .failure(let error): return .failure(ListenAddressError("\(error.message); \(shape)"))
            }
        } else {
            let colons = whole.filter { $0 == ":" }.count
            guard colons == 1, let colon = whole.firstIndex(of: ":") else {
                let why = colons == 0 ? "has no port" : "looks like a bare IPv6 address (bracket it: [::1]:9300)"
                return .failure(ListenAddressError("\(quoted(text)) \(why); \(shape)"))
            }
            hostPart = whole[..<colon]
            portPart = whole[whole.index(after: colon)...]
            switch IPv4Address.parse(hostPart) {
            case .success(let address): host = .ipv4(address)
            case .failure(let error): return .failure(ListenAddressError("\(error.message); \(shape)"))
            }
        }
        // Decimal digits only: no sign, no blanks, no range.
        guard !portPart.isEmpty, portPart.utf8.count <= 5,
              portPart.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let port = Int(portPart), (1...65535).contains(port) else {
            return .failure(ListenAddressError("port \(quoted(portPart)) in \(quoted(text)) is not a number within 1...65535"))
        }
        return .success(ListenAddress(host: host, port: UInt16(port)))
    }
}

/// Why a listen address was rejected; `message` is shown to the operator as is.
public struct ListenAddressError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}
