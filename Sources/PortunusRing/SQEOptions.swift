import CLiburing

/// Per-SQE flags the engine uses.
public struct SQEOptions: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// `IOSQE_IO_LINK`: the next SQE starts only when this one succeeds fully.
    public static let link = SQEOptions(rawValue: 1 << 0)
    /// `IOSQE_CQE_SKIP_SUCCESS`: post no completion unless the operation fails.
    public static let skipSuccess = SQEOptions(rawValue: 1 << 1)

    @inline(__always)
    var sqeFlags: UInt32 {
        var flags: UInt32 = 0
        if contains(.link) { flags |= PU_IOSQE_IO_LINK }
        if contains(.skipSuccess) { flags |= PU_IOSQE_CQE_SKIP_SUCCESS }
        return flags
    }
}
