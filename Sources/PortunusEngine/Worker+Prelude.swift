import Glibc
import PortunusProxyProtocol
import PortunusRing

/// The PROXY protocol prelude (SPEC.md §4): right after the upstream connect succeeds
/// and before any client byte, one send of the encoded header, linked to a link
/// timeout so a stuck upstream cannot hang connection set-up. A timeout, an error or a
/// short write is a failed dial of that target: the upstream is reset and the next
/// target is tried. The header's bytes are not payload and are not counted as such.
extension Worker {
    /// Encodes the header for the slot's client and starts the time-boxed send. The
    /// client and destination are those of the connection's inbound PROXY header when
    /// it had one naming them (`accept_proxy`), else the socket's own; a v2 header
    /// passes the inbound header's TLVs on and adds the target's own.
    func sendPrelude(_ slot: Int32, _ endpoint: Int32) {
        let client = slab[slot].client
        let inbound = inboundHeader(slot)
        let source: ProxyAddress, destination: ProxyAddress
        if let inbound, let from = inbound.source, let to = inbound.destination {
            (source, destination) = (from, to)
        } else {
            // Source: the client. Destination: the address and port the client connected
            // to on this host, which may be any of its addresses.
            guard let peer = io.peerAddress(client), let local = io.localAddress(client) else {
                // The client is already gone (ENOTCONN): nothing to announce.
                close(slot, reset: true)
                return
            }
            (source, destination) = (Self.proxyAddress(peer), Self.proxyAddress(local))
        }
        let version = setup.plan.endpointPrelude[Int(endpoint)]!
        let options = setup.plan.endpointPreludeOptions[Int(endpoint)]
        let id = options.uniqueID ? connectionID(slot) : (0, 0)
        let tlvs = inbound.map { options.passTLVs ? $0.tlvs : 0..<0 } ?? 0..<0
        // Ownership: the bytes at slot × stride belong to this slot alone, and are written
        // only here, when no prelude send of the slot is in flight (the first attempt,
        // or a retry after the previous send's completion); the kernel reads them until
        // that send completes, and the slot cannot be reused before then. The inbound
        // header after them is only read.
        let encoded = preludes.withMutableBytes(offset: Int(slot) * preludeStride, length: preludeStride) { area in
            let buffer = UnsafeMutableRawBufferPointer(rebasing: area[..<outboundStride])
            if version == .v1 { return ProxyHeader.encode(.v1, source: source, destination: destination, into: buffer) }
            let inboundTLVs = UnsafeRawBufferPointer(rebasing: area[(outboundStride + tlvs.lowerBound)..<(outboundStride + tlvs.upperBound)])
            return withUnsafeBytes(of: (id.0.bigEndian, id.1.bigEndian)) { idBytes in
                ProxyHeader.encodeV2(source: source, destination: destination, passing: inboundTLVs,
                                     uniqueID: options.uniqueID ? idBytes : nil, crc32c: options.crc32c, into: buffer)
            }
        }
        switch encoded {
        case let .success(length):
            slab[slot].preludeLength = Int32(length)
            io.reserve(2)
            io.prepareSend(fd: slab[slot].upstream, from: preludes, offset: Int(slot) * preludeStride, length: length,
                           userData: userData(slot, .prelude), dontWait: false, options: .link)
            io.prepareLinkTimeout(preludeTimeout, userData: userData(slot, .preludeTimeout))
            slab[slot].inFlight += 2
        case let .failure(error):
            // Both addresses come from one socket or one inbound header, so their families
            // match, and the inbound TLVs fit the area; this is a defect, reported rather
            // than sent as a wrong header.
            logger.error("cannot encode the PROXY header", metadata: [
                "event": "rule.target.proxy_protocol_write_failed", "error": "\(error)", "source": "\(source)", "destination": "\(destination)",
            ])
            close(slot, reset: true)
        }
    }

    func onPreludeSent(_ slot: Int32, _ result: Int32) {
        let length = slab[slot].preludeLength
        if result == length {
            connectionEvent(slot, .preludeSent)
            return
        }
        let timeoutMs = setup.settings.preludeTimeoutMs
        let error = switch result {
        case -ECANCELED: SystemError("send PROXY header (timed out after \(timeoutMs) ms)", errno: ETIMEDOUT)
        case ..<0: SystemError("send PROXY header", result: result)
        default: SystemError("send PROXY header (short write, \(result) of \(length) bytes)", errno: EIO)
        }
        attemptFailed(slot, error, inPrelude: true)
    }

    /// The codec's address type from a socket address, without allocating.
    @inline(__always)
    static func proxyAddress(_ address: SocketAddress) -> ProxyAddress {
        address.withOctets { ProxyAddress(octets: $0, port: address.port)! }
    }
}
