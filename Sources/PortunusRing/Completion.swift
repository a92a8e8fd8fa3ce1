import CLiburing

/// One completion (CQE), copied out of the CQ ring before any handler runs.
public struct Completion: Sendable {
    public let userData: UserData
    /// The operation's result: a byte count, an fd, 0, or `-errno`.
    public let result: Int32
    /// Raw CQE flags.
    public let flags: UInt32

    @inline(__always)
    public init(userData: UserData, result: Int32, flags: UInt32) {
        self.userData = userData
        self.result = result
        self.flags = flags
    }

    /// `IORING_CQE_F_MORE`: a multishot request stays armed after this completion.
    @inline(__always) public var hasMore: Bool { flags & PU_IORING_CQE_F_MORE != 0 }

    /// The provided buffer the kernel picked (`IORING_CQE_F_BUFFER`), if any.
    @inline(__always) public var bufferID: UInt16? {
        guard flags & PU_IORING_CQE_F_BUFFER != 0 else { return nil }
        return UInt16(truncatingIfNeeded: flags >> PU_IORING_CQE_BUFFER_SHIFT)
    }
}
