// Target hosts and the `target = "host:port"` string form (SPEC.md §2).

/// Where a target lives: an address literal, dialled directly, or a DNS name,
/// resolved by the engine off the ring threads (SPEC.md §6).
public enum TargetHost: Sendable, Equatable, Hashable, CustomStringConvertible {
    case ipv4(IPv4Address)
    case ipv6(IPv6Address)
    /// A valid DNS name, lower-cased, without a trailing dot: names compare
    /// case-insensitively and "a.example." is the same host as "a.example".
    case name(String)

    /// The host as it would appear in `target = "..."`: IPv6 in brackets.
    public var description: String {
        switch self {
        case .ipv4(let address): address.description
        case .ipv6(let address): "[\(address)]"
        case .name(let name): name
        }
    }
}

/// The outcome of parsing `target = "..."`: both parts when valid, else
/// every problem found.
struct ParsedTargetString {
    var host: TargetHost?
    var ports: PortRange?
    var errors: [TargetSyntaxError] = []
}

/// Why a `target = "..."` string was rejected.
enum TargetSyntaxError: Error, Equatable {
    case host(HostSyntaxError)
    case ports(PortSyntaxError)

    var code: String {
        switch self {
        case .host: ConfigDiagnostic.Code.hostInvalid
        case .ports(let error): error.code
        }
    }

    var message: String {
        switch self {
        case .host(let error): error.message
        case .ports(let error): error.message
        }
    }
}

extension TargetHost {
    /// Parses the `host` key of a `targets` entry: IPv4, IPv6 with or without
    /// brackets (there is no port to confuse it with), or a DNS name.
    static func parse(_ text: Substring) -> Result<TargetHost, HostSyntaxError> {
        guard !text.isEmpty else { return .failure(HostSyntaxError("host is empty")) }
        if text.first == "[" {
            guard text.count >= 2, text.last == "]" else {
                return .failure(HostSyntaxError("\(quoted(text)): missing \"]\" after a bracketed IPv6 address"))
            }
            return IPv6Address.parse(text.dropFirst().dropLast()).map(TargetHost.ipv6)
        }
        if text.contains(":") {
            let parsed = IPv6Address.parse(text).map(TargetHost.ipv6)
            // One colon is far more likely "host:port" in the wrong key than IPv6.
            if case .failure = parsed, text.firstIndex(of: ":") == text.lastIndex(of: ":") {
                return .failure(HostSyntaxError(
                    "\(quoted(text)): host must not include a port; put the port in \"port\""))
            }
            return parsed
        }
        // All digits and dots can only be meant as IPv4, so it must be valid
        // IPv4: never fall through to DNS, where "010.0.0.1" would resolve.
        let isDigit = { (byte: UInt8) in byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
        if text.utf8.contains(where: isDigit), text.utf8.allSatisfy({ $0 == UInt8(ascii: ".") || isDigit($0) }) {
            return IPv4Address.parse(text).map(TargetHost.ipv4)
        }
        return parseName(text).map(TargetHost.name)
    }

    /// Validates a DNS name (RFC 1123 host names): labels of 1-63 characters
    /// from a-z, 0-9 and "-", not starting or ending with "-", 253 characters
    /// in all. Returns it case-folded without its trailing dot.
    static func parseName(_ text: Substring) -> Result<String, HostSyntaxError> {
        func failure(_ why: String) -> Result<String, HostSyntaxError> {
            .failure(HostSyntaxError("\(quoted(text)) is not a valid DNS name: \(why)"))
        }
        guard text.utf8.allSatisfy({ $0 < 0x80 }) else {
            return failure("non-ASCII characters; write internationalized names in their xn-- form")
        }
        var name = text.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        guard !name.isEmpty else { return failure("it is empty") }
        guard name.utf8.count <= 253 else { return failure("longer than 253 characters") }
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty else { return failure("empty label (\"..\" or a leading dot)") }
            guard label.utf8.count <= 63 else { return failure("label \(quoted(label)) is longer than 63 characters") }
            if let bad = label.first(where: { !(("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-") }) {
                return failure("label \(quoted(label)) contains \(quoted(String(bad))); labels use a-z, 0-9 and \"-\"")
            }
            guard label.first != "-", label.last != "-" else {
                return failure("label \(quoted(label)) starts or ends with \"-\"")
            }
        }
        return .success(name)
    }

    /// Splits `target = "host:port"`, `"host:lo-hi"` or `"[v6]:port"` into its
    /// host and port parts and parses both, so one string can report a bad
    /// host and a bad port together. A bare IPv6 address is rejected: with
    /// more than one colon the port boundary would be a guess.
    static func parseTarget(_ text: String) -> ParsedTargetString {
        switch splitTarget(Substring(text)) {
        case .failure(let error):
            return ParsedTargetString(errors: [error])
        case .success(let parts):
            var result = ParsedTargetString()
            let host = parts.bracketed
                ? IPv6Address.parse(parts.host).map(TargetHost.ipv6).mapError { error in
                    // Keep the zone-ID explanation; otherwise name what the operator wrote.
                    parts.host.contains("%") ? error
                        : HostSyntaxError("\(quoted("[\(parts.host)]")) is not a valid bracketed IPv6 address")
                }
                : parse(parts.host)
            switch host {
            case .success(let value): result.host = value
            case .failure(let error): result.errors.append(.host(error))
            }
            switch PortRange.parse(parts.ports) {
            case .success(let value): result.ports = value
            case .failure(let error): result.errors.append(.ports(error))
            }
            return result
        }
    }

    private static func splitTarget(_ text: Substring)
        -> Result<(host: Substring, ports: Substring, bracketed: Bool), TargetSyntaxError> {
        let shape = "expected \"host:port\", \"host:lo-hi\" or \"[ipv6]:port\""
        if text.first == "[" {
            guard let close = text.firstIndex(of: "]") else {
                return .failure(.host(HostSyntaxError("\(quoted(text)): missing \"]\" after a bracketed IPv6 address")))
            }
            let rest = text[text.index(after: close)...]
            guard rest.first == ":" else {
                return .failure(.ports(.malformed("\(quoted(text)) has no \":port\" after \"]\"; \(shape)")))
            }
            return .success((text[text.index(after: text.startIndex)..<close], rest.dropFirst(), true))
        }
        let colons = text.filter { $0 == ":" }.count
        guard colons != 0 else {
            return .failure(.ports(.malformed("\(quoted(text)) has no port; \(shape)")))
        }
        guard colons == 1 else { return .failure(.host(bareIPv6Error(text))) }
        let colon = text.firstIndex(of: ":")!
        return .success((text[..<colon], text[text.index(after: colon)...], false))
    }

    /// "bracket IPv6 addresses: [::1]:80", with the operator's own address
    /// when the part before the last colon is one.
    private static func bareIPv6Error(_ text: Substring) -> HostSyntaxError {
        let lastColon = text.lastIndex(of: ":")!
        let address = text[..<lastColon], port = text[text.index(after: lastColon)...]
        let example = IPv6Address(address) != nil && !port.isEmpty ? "[\(address)]:\(port)" : "[::1]:80"
        return HostSyntaxError("\(quoted(text)) looks like a bare IPv6 address; bracket IPv6 addresses: \(example)")
    }
}
