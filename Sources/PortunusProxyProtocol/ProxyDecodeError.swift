/// Why bytes are not a valid PROXY header. The PROXY spec says a receiver
/// must abort the connection on any of these.
public enum ProxyDecodeError: Error, Sendable, Hashable {
    // MARK: Both versions

    /// The input starts with neither `PROXY ` (v1) nor the 12-byte v2
    /// signature.
    case badSignature

    // MARK: Version 2

    /// The v2 version nibble (high nibble of byte 13, given whole) is not 2.
    case unsupportedVersion(UInt8)
    /// The v2 command nibble (byte 13, given whole) is neither LOCAL nor PROXY.
    case unknownCommand(UInt8)
    /// The v2 family nibble (byte 14, given whole) is not UNSPEC, INET,
    /// INET6 or UNIX.
    case unknownAddressFamily(UInt8)
    /// The v2 protocol nibble (byte 14, given whole) is not UNSPEC, STREAM or
    /// DGRAM, or pairs UNSPEC with a real family (or the reverse), which the
    /// spec does not list.
    case unknownTransport(UInt8)
    /// The v2 length field is shorter than the address block its family needs.
    case lengthTooShort(declared: Int, required: Int)
    /// A TLV header or value runs past the end of the v2 header.
    case tlvOverrun(offset: Int)
    /// A TLV whose value breaks its type's rules: a `CRC32C` that is not
    /// 4 bytes or appears twice, a `UNIQUE_ID` over 128 bytes.
    case malformedTLV(type: UInt8)
    /// The `CRC32C` TLV does not match the checksum of the header.
    case crc32cMismatch(received: UInt32, computed: UInt32)

    // MARK: Version 1

    /// No CRLF within the first 107 bytes, the longest line the spec allows.
    case missingCRLF
    /// A CR not followed by LF, or an LF without CR; the spec forbids
    /// treating either alone as a line end.
    case strayLineBreak
    /// The protocol word is not `TCP4`, `TCP6` or `UNKNOWN`.
    case unknownProtocol
    /// Fields are missing, extra, or not separated by exactly one space.
    case malformedLine
    /// An address is not valid for the announced family (includes leading
    /// zeros in IPv4 numbers).
    case badAddress
    /// A port is not a decimal 0...65535 without leading zeros.
    case badPort
}
