import Glibc
import Testing
@testable import PortunusRing

/// Multishot recvmsg on a UDP socket with provided buffers, as the kernel does it: one
/// armed request, one completion per datagram, boundaries kept, the source address in
/// each buffer, and a datagram too long for a buffer reported as truncated (MSG_TRUNC)
/// with its real length, so the engine can drop and count it instead of forwarding a cut
/// one. (Without MSG_TRUNC in the request's flags the kernel reports the cut length:
/// found by this test.)
@Suite struct DatagramTests {
    static func udpSocket(_ family: Int32, _ host: String) -> (fd: Int32, port: UInt16) {
        let fd = socket(family, Int32(SOCK_DGRAM.rawValue), 0)
        var storage = sockaddr_storage()
        var length: socklen_t
        if family == AF_INET6 {
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            inet_pton(AF_INET6, host, &sin6.sin6_addr)
            withUnsafeBytes(of: sin6) { raw in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: raw) } }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        } else {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            inet_pton(AF_INET, host, &sin.sin_addr)
            withUnsafeBytes(of: sin) { raw in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: raw) } }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        }
        _ = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        var bound = sockaddr_storage()
        var boundLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &boundLength) } }
        return (fd, SocketAddress(reading: &bound)!.port)
    }

    @Test(arguments: [(AF_INET, "127.0.0.1"), (AF_INET6, "::1")])
    func eachDatagramArrivesWholeWithItsSourceOrMarkedTruncated(family: Int32, host: String) throws {
        let ring = try Ring(RingOptions(entries: 8))
        let buffers = try ProvidedBufferRing(ring: ring, groupID: 5, count: 8, bufferSize: 4096)
        let layout = DatagramLayout()
        let receiver = Self.udpSocket(family, host), sender = Self.udpSocket(family, host)
        defer { close(receiver.fd); close(sender.fd) }
        let capacity = layout.payloadCapacity(bufferSize: 4096)
        ring.prepareMultishotRecvMsg(fd: receiver.fd, layout: layout, from: buffers, userData: UserData(slot: 1, generation: 0, kind: 1))
        ring.submitAndWait(0)

        let sizes = [1, 1000, capacity, capacity + 1, 3]
        let destination = SocketAddress.loopback(family == AF_INET ? .ipv4 : .ipv6, port: receiver.port)
        let table = SocketAddressTable(capacity: 1)
        table.append(destination)
        for (i, size) in sizes.enumerated() {
            let payload = [UInt8](repeating: UInt8(i + 1), count: size)
            let sent = sendto(sender.fd, payload, size, 0, table.sockaddrPointer(0), table.length(0))
            #expect(sent == size)
        }
        let completions = RingSubmissionTests.collect(ring, sizes.count)
        for (i, completion) in completions.enumerated() {
            #expect(completion.hasMore, "the one request stays armed")
            let bid = try #require(completion.bufferID)
            buffers.take(bid)
            let datagram = try #require(buffers.datagram(in: bid, completionResult: completion.result, layout: layout))
            #expect(datagram.source == SocketAddress.loopback(family == AF_INET ? .ipv4 : .ipv6, port: sender.port))
            #expect(datagram.datagramLength == sizes[i])
            #expect(datagram.truncated == (sizes[i] > capacity))
            #expect(datagram.payloadLength == min(sizes[i], capacity))
            let bytes = buffers.bytes(of: bid, count: datagram.payloadOffset + datagram.payloadLength).suffix(datagram.payloadLength)
            #expect(Array(bytes) == [UInt8](repeating: UInt8(i + 1), count: datagram.payloadLength))
            buffers.recycle(bid)
        }
    }

    /// The reply path: a datagram received on a listen socket goes back to its source
    /// from the same socket and the same buffer, with sendmsg to the address.
    @Test func aReceivedDatagramIsSentBackToItsSourceFromItsBuffer() throws {
        let ring = try Ring(RingOptions(entries: 8))
        let buffers = try ProvidedBufferRing(ring: ring, groupID: 6, count: 4, bufferSize: 2048)
        let layout = DatagramLayout(), headers = DatagramSendHeaders(count: 4)
        let listener = Self.udpSocket(AF_INET, "127.0.0.1"), client = Self.udpSocket(AF_INET, "127.0.0.1")
        defer { close(listener.fd); close(client.fd) }
        ring.prepareMultishotRecvMsg(fd: listener.fd, layout: layout, from: buffers, userData: UserData(slot: 1, generation: 0, kind: 1))
        ring.submitAndWait(0)
        let table = SocketAddressTable(capacity: 1)
        table.append(.loopback(.ipv4, port: listener.port))
        let payload = Array("ping over io_uring".utf8)
        #expect(sendto(client.fd, payload, payload.count, 0, table.sockaddrPointer(0), table.length(0)) == payload.count)
        let received = RingSubmissionTests.collect(ring, 1)[0]
        let bid = try #require(received.bufferID)
        buffers.take(bid)
        let datagram = try #require(buffers.datagram(in: bid, completionResult: received.result, layout: layout))
        ring.prepareSendDatagram(fd: listener.fd, to: datagram.source!, source: datagram.destination, from: buffers, bufferID: bid, offset: datagram.payloadOffset,
                                 length: datagram.payloadLength, headers: headers, userData: UserData(slot: 2, generation: 0, kind: 2))
        #expect(RingSubmissionTests.collect(ring, 1)[0].result == Int32(payload.count))
        buffers.recycle(bid)
        var back = [UInt8](repeating: 0, count: 64)
        #expect(recv(client.fd, &back, back.count, 0) == payload.count)
        #expect(Array(back[0..<payload.count]) == payload)
    }

    /// A listen socket made by ``Sockets/datagramListener(_:port:reusePort:)`` reports
    /// the local address each datagram was sent to, and a reply sent from it reaches a
    /// client connected to that address (127.0.0.2: routing alone would answer from
    /// 127.0.0.1, and the connected client would never see it).
    @Test(arguments: [(AF_INET, [127, 0, 0, 2]), (AF_INET6, [UInt8](repeating: 0, count: 15) + [1])])
    func aWildcardListenerSaysWhichAddressADatagramWasSentToAndRepliesFromIt(family: Int32, octets: [UInt8]) throws {
        let ring = try Ring(RingOptions(entries: 8))
        let buffers = try ProvidedBufferRing(ring: ring, groupID: 7, count: 4, bufferSize: 2048)
        let layout = DatagramLayout(), headers = DatagramSendHeaders(count: 4)
        let probe = Self.udpSocket(family, family == AF_INET ? "0.0.0.0" : "::")
        close(probe.fd)
        let listener = try Sockets.datagramListener(family == AF_INET ? .ipv4 : .ipv6, port: probe.port, reusePort: false)
        let client = Self.udpSocket(family, family == AF_INET ? "127.0.0.1" : "::1")
        defer { close(listener); close(client.fd) }
        func address(_ port: UInt16) -> SocketAddress {
            family == AF_INET ? SocketAddress(ipv4: octets, port: port) : SocketAddress(ipv6: octets, port: port)
        }
        let to = address(probe.port)
        let table = SocketAddressTable(capacity: 1)
        table.append(to)
        #expect(connect(client.fd, table.sockaddrPointer(0), table.length(0)) == 0)
        ring.prepareMultishotRecvMsg(fd: listener, layout: layout, from: buffers, userData: UserData(slot: 1, generation: 0, kind: 1))
        ring.submitAndWait(0)
        let payload = Array("which address?".utf8)
        #expect(send(client.fd, payload, payload.count, 0) == payload.count)
        let received = RingSubmissionTests.collect(ring, 1)[0]
        let bid = try #require(received.bufferID)
        buffers.take(bid)
        let datagram = try #require(buffers.datagram(in: bid, completionResult: received.result, layout: layout))
        #expect(datagram.destination == address(0))
        #expect(Array(UnsafeRawBufferPointer(start: buffers.address(of: bid) + datagram.payloadOffset, count: datagram.payloadLength)) == payload)
        ring.prepareSendDatagram(fd: listener, to: datagram.source!, source: datagram.destination, from: buffers, bufferID: bid,
                                 offset: datagram.payloadOffset, length: datagram.payloadLength, headers: headers,
                                 userData: UserData(slot: 2, generation: 0, kind: 2))
        #expect(RingSubmissionTests.collect(ring, 1)[0].result == Int32(payload.count))
        buffers.recycle(bid)
        var back = [UInt8](repeating: 0, count: 64)
        #expect(recv(client.fd, &back, back.count, Int32(MSG_DONTWAIT)) == payload.count)
        #expect(Array(back[0..<payload.count]) == payload)
    }

    /// ICMP port unreachable on a connected upstream socket ends its multishot recvmsg
    /// with -ECONNREFUSED (and no IORING_CQE_F_MORE): the engine's cue to evict the flow.
    @Test func aClosedUpstreamPortEndsTheRecvWithConnectionRefused() throws {
        let ring = try Ring(RingOptions(entries: 8))
        let buffers = try ProvidedBufferRing(ring: ring, groupID: 7, count: 4, bufferSize: 2048)
        let layout = DatagramLayout()
        let closed = Self.udpSocket(AF_INET, "127.0.0.1")
        close(closed.fd)   // nothing listens on its port any more
        let upstream = Self.udpSocket(AF_INET, "127.0.0.1")
        defer { close(upstream.fd) }
        let table = SocketAddressTable(capacity: 1)
        table.append(.loopback(.ipv4, port: closed.port))
        #expect(connect(upstream.fd, table.sockaddrPointer(0), table.length(0)) == 0)
        ring.prepareMultishotRecvMsg(fd: upstream.fd, layout: layout, from: buffers, userData: UserData(slot: 1, generation: 0, kind: 1))
        ring.submitAndWait(0)
        #expect(send(upstream.fd, [1, 2, 3], 3, 0) == 3)
        let completion = RingSubmissionTests.collect(ring, 1)[0]
        #expect(completion.result == -ECONNREFUSED)
        #expect(!completion.hasMore)
        #expect(completion.bufferID == nil)
    }
}
