import Glibc

/// inet_pton / inet_ntop for ``ResolvedAddress``.
enum AddressText {
    static func parse(_ text: Substring) -> ResolvedAddress? {
        var bytes = (UInt64(0), UInt64(0))
        let string = String(text)
        if withUnsafeMutableBytes(of: &bytes, { inet_pton(AF_INET, string, $0.baseAddress) }) == 1 {
            return withUnsafeBytes(of: bytes) { ResolvedAddress(isIPv6: false, raw: UnsafeRawBufferPointer(rebasing: $0[0..<4])) }
        }
        if withUnsafeMutableBytes(of: &bytes, { inet_pton(AF_INET6, string, $0.baseAddress) }) == 1 {
            return withUnsafeBytes(of: bytes) { ResolvedAddress(isIPv6: true, raw: $0) }
        }
        return nil
    }

    static func format(_ address: ResolvedAddress) -> String {
        var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        withUnsafeBytes(of: address.words) { raw in
            _ = inet_ntop(address.isIPv6 ? AF_INET6 : AF_INET, raw.baseAddress, &out, socklen_t(out.count))
        }
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
