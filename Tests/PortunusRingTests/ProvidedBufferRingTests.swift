import Glibc
import Testing
@testable import PortunusRing

@Suite struct ProvidedBufferRingTests {
    @Test func recvPicksABufferAndRunsDryUntilRecycled() throws {
        let ring = try Ring(RingOptions(entries: 8))
        let buffers = try ProvidedBufferRing(ring: ring, groupID: 3, count: 1, bufferSize: 4096)
        var fds: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        let message: [UInt8] = Array("hello, ring".utf8)
        #expect(write(fds[1], message, message.count) == message.count)

        ring.prepareRecv(fd: fds[0], from: buffers, userData: UserData(slot: 1, generation: 0, kind: 1))
        let first = RingSubmissionTests.collect(ring, 1)[0]
        #expect(first.result == Int32(message.count))
        let bid = try #require(first.bufferID)
        buffers.take(bid)
        #expect(buffers.heldCount == 1)
        #expect(buffers.bytes(of: bid, count: message.count) == message)

        // The only buffer is still held: the next recv finds the group empty.
        #expect(write(fds[1], message, message.count) == message.count)
        ring.prepareRecv(fd: fds[0], from: buffers, userData: UserData(slot: 2, generation: 0, kind: 1))
        #expect(RingSubmissionTests.collect(ring, 1)[0].result == -ENOBUFS)

        buffers.recycle(bid)
        #expect(buffers.heldCount == 0)
        ring.prepareRecv(fd: fds[0], from: buffers, userData: UserData(slot: 3, generation: 0, kind: 1))
        let third = RingSubmissionTests.collect(ring, 1)[0]
        #expect(third.result == Int32(message.count))
        #expect(third.bufferID == bid)
    }

    @Test func sendFromABufferContinuesAtAnOffset() throws {
        let ring = try Ring(RingOptions(entries: 8))
        let buffers = try ProvidedBufferRing(ring: ring, groupID: 4, count: 2, bufferSize: 4096)
        var fds: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        let message: [UInt8] = Array("0123456789".utf8)
        _ = write(fds[1], message, message.count)
        ring.prepareRecv(fd: fds[0], from: buffers, userData: UserData(slot: 1, generation: 0, kind: 1))
        let got = RingSubmissionTests.collect(ring, 1)[0]
        ring.prepareSend(fd: fds[0], from: buffers, bufferID: got.bufferID!, offset: 4, length: 6, userData: UserData(slot: 2, generation: 0, kind: 2))
        #expect(RingSubmissionTests.collect(ring, 1)[0].result == 6)
        var back = [UInt8](repeating: 0, count: 16)
        let n = read(fds[1], &back, 16)
        #expect(Array(back[0..<n]) == Array("456789".utf8))
    }
}
