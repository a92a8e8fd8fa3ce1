import CLiburing

/// The `msghdr` a multishot recvmsg is prepared with, at a fixed address for as long
/// as the request is armed. It only gives the kernel the layout of each buffer it
/// fills: room for a source address (an IPv6 `sockaddr_in6` at most) and for the
/// local-address control message of a socket with IP_PKTINFO / IPV6_RECVPKTINFO on
/// (``Sockets/datagramListener(_:port:reusePort:)``). Each buffer then holds an
/// `io_uring_recvmsg_out`, the source address, the control data and the payload (see
/// ``ProvidedBufferRing/datagram(in:completionResult:layout:)``).
public final class DatagramLayout {
    let header: UnsafeMutablePointer<msghdr>

    public init() {
        header = .allocate(capacity: 1)
        header.initialize(to: msghdr())
        // Room for a sockaddr_in6 (28 bytes), rounded up to 32 so the control messages
        // that follow (after the 16-byte io_uring_recvmsg_out) start 8-byte aligned.
        header.pointee.msg_namelen = socklen_t((MemoryLayout<sockaddr_in6>.size + 7) & ~7)
        header.pointee.msg_controllen = Int(PU_PKTINFO_CONTROL_ROOM)
    }

    deinit { header.deallocate() }

    /// The most payload one provided buffer of `bufferSize` bytes can hold: a longer
    /// datagram arrives truncated (``ReceivedDatagram/truncated``).
    public func payloadCapacity(bufferSize: Int) -> Int {
        bufferSize - MemoryLayout<io_uring_recvmsg_out>.size - Int(header.pointee.msg_namelen) - header.pointee.msg_controllen
    }
}

/// One datagram as a multishot recvmsg delivered it into a provided buffer.
public struct ReceivedDatagram: Sendable {
    /// Who sent it (nil: a family other than IPv4 or IPv6).
    public let source: SocketAddress?
    /// The local address it was sent to, port 0, with the interface it came in on as
    /// the scope of an IPv6 link-local address: where a reply must come from. nil when
    /// the socket does not report it (no IP_PKTINFO) or for a multicast destination.
    public let destination: SocketAddress?
    /// Where its bytes start in the buffer, and how many of them the buffer holds.
    public let payloadOffset: Int
    public let payloadLength: Int
    /// The datagram's real length: more than `payloadLength` when it did not fit.
    public let datagramLength: Int
    /// The kernel's MSG_TRUNC: the datagram was longer than the buffer could hold and
    /// its tail is lost, so it must be dropped, never forwarded cut short.
    public let truncated: Bool
}

extension Ring {
    /// Multishot recvmsg on a datagram socket: one SQE, one completion per datagram
    /// (while `IORING_CQE_F_MORE` is set), each in a buffer the kernel picks from
    /// `buffers`. Datagram boundaries are kept: one datagram per buffer.
    public func prepareMultishotRecvMsg(fd: Int32, layout: DatagramLayout, from buffers: ProvidedBufferRing, userData: UserData) {
        let sqe = nextSQE()
        // MSG_TRUNC: the completion reports a datagram's real length even when the
        // buffer held less of it (without it, the cut length: a truncation would look
        // like a short datagram).
        io_uring_prep_recvmsg_multishot(sqe, fd, layout.header, UInt32(MSG_TRUNC))
        sqe.pointee.buf_group = buffers.groupID
        io_uring_sqe_set_data64(sqe, userData.rawValue)
        io_uring_sqe_set_flags(sqe, PU_IOSQE_BUFFER_SELECT)
    }
}

extension ProvidedBufferRing {
    /// Parses buffer `bufferID`, filled by a multishot recvmsg whose completion reported
    /// `completionResult` bytes; nil if the kernel's header does not fit (never expected).
    public func datagram(in bufferID: UInt16, completionResult: Int32, layout: DatagramLayout) -> ReceivedDatagram? {
        let base = address(of: bufferID)
        guard let out = io_uring_recvmsg_validate(base, completionResult, layout.header) else { return nil }
        let name = io_uring_recvmsg_name(out)!
        let payload = io_uring_recvmsg_payload(out, layout.header)!
        let held = Int(io_uring_recvmsg_payload_length(out, completionResult, layout.header))
        let source: SocketAddress? = out.pointee.namelen == 0 ? nil : {
            var storage = sockaddr_storage()
            withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: name, count: min(Int(out.pointee.namelen), $0.count))) }
            return SocketAddress(reading: &storage)
        }()
        let length = Int(out.pointee.payloadlen)
        return ReceivedDatagram(source: source, destination: Self.localAddress(out, layout), payloadOffset: payload - base,
                                payloadLength: held, datagramLength: length,
                                truncated: out.pointee.flags & UInt32(MSG_TRUNC) != 0 || length > held)
    }

    private static func localAddress(_ out: UnsafeMutablePointer<io_uring_recvmsg_out>, _ layout: DatagramLayout) -> SocketAddress? {
        guard out.pointee.controllen > 0 else { return nil }
        var words: (UInt64, UInt64) = (0, 0)
        var interface: UInt32 = 0
        let family = withUnsafeMutableBytes(of: &words) {
            pu_recvmsg_local_address(out, layout.header, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), &interface)
        }
        switch family {
        case AF_INET:
            return SocketAddress(family: .ipv4, addressWords: words, port: 0)
        case AF_INET6:
            let (b0, b1) = withUnsafeBytes(of: words) { ($0[0], $0[1]) }
            // A multicast destination (ff00::/8) is no source for a reply: routing picks one.
            if b0 == 0xFF { return nil }
            // Link-local (fe80::/10) means something only on its interface.
            let linkLocal = b0 == 0xFE && b1 & 0xC0 == 0x80
            return SocketAddress(family: .ipv6, addressWords: words, port: 0, scopeID: linkLocal ? interface : 0)
        default:
            return nil
        }
    }
}

/// One `msghdr`, `iovec`, destination address and control area per provided buffer,
/// at fixed addresses, for sending a datagram held in that buffer to an address of our
/// choosing, from a local address of our choosing (a reply leaving through the listen
/// socket to its client, from the address the client wrote to). A buffer carries at
/// most one datagram in flight, so its header is free again when that send completes.
public final class DatagramSendHeaders {
    private let headers: UnsafeMutablePointer<msghdr>
    private let vectors: UnsafeMutablePointer<iovec>
    private let addresses: UnsafeMutablePointer<sockaddr_storage>
    private let controls: UnsafeMutableRawPointer
    public let count: Int

    public init(count: Int) {
        self.count = count
        headers = .allocate(capacity: count)
        headers.initialize(repeating: msghdr(), count: count)
        vectors = .allocate(capacity: count)
        vectors.initialize(repeating: iovec(), count: count)
        addresses = .allocate(capacity: count)
        addresses.initialize(repeating: sockaddr_storage(), count: count)
        controls = .allocate(byteCount: max(count, 1) * Int(PU_PKTINFO_CONTROL_ROOM), alignment: MemoryLayout<cmsghdr>.alignment)
    }

    deinit {
        headers.deallocate()
        vectors.deallocate()
        addresses.deallocate()
        controls.deallocate()
    }

    fileprivate func header(_ index: Int, to address: SocketAddress, from source: SocketAddress?, bytes: UnsafeMutableRawPointer,
                            length: Int) -> UnsafeMutablePointer<msghdr> {
        precondition(index < count)
        let nameLength = address.write(to: addresses + index)
        vectors[index] = iovec(iov_base: bytes, iov_len: length)
        headers[index] = msghdr()
        headers[index].msg_name = UnsafeMutableRawPointer(addresses + index)
        headers[index].msg_namelen = nameLength
        headers[index].msg_iov = vectors + index
        headers[index].msg_iovlen = 1
        if let source, source.family == address.family {
            let control = controls + index * Int(PU_PKTINFO_CONTROL_ROOM)
            headers[index].msg_control = control
            headers[index].msg_controllen = source.withOctets { octets in
                pu_source_address_cmsg(control, source.family == .ipv4 ? AF_INET : AF_INET6,
                                       octets.baseAddress!.assumingMemoryBound(to: UInt8.self), source.scopeID)
            }
        }
        return headers + index
    }
}

extension Ring {
    /// Sends `length` bytes of provided buffer `bufferID` from `offset` as one datagram
    /// to `address` (sendmsg on an unconnected socket), from local address `source`
    /// when given (IP_PKTINFO / IPV6_PKTINFO; nil: routing chooses). MSG_DONTWAIT: a
    /// full socket buffer drops this datagram (-EAGAIN) instead of parking the request.
    public func prepareSendDatagram(fd: Int32, to address: SocketAddress, source: SocketAddress?, from buffers: ProvidedBufferRing,
                                    bufferID: UInt16, offset: Int, length: Int, headers: DatagramSendHeaders, userData: UserData) {
        let header = headers.header(Int(bufferID), to: address, from: source, bytes: buffers.address(of: bufferID) + offset, length: length)
        let sqe = nextSQE()
        io_uring_prep_sendmsg(sqe, fd, header, UInt32(MSG_NOSIGNAL | MSG_DONTWAIT))
        io_uring_sqe_set_data64(sqe, userData.rawValue)
        io_uring_sqe_set_flags(sqe, 0)
    }
}
