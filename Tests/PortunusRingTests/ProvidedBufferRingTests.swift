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

    /// One recv through the ring on a socket pair: the buffer it was given.
    private static func recvOnce(_ ring: Ring, _ buffers: ProvidedBufferRing, _ fds: [Int32], slot: UInt32) throws -> UInt16 {
        let message: [UInt8] = Array("stock".utf8)
        #expect(write(fds[1], message, message.count) == message.count)
        ring.prepareRecv(fd: fds[0], from: buffers, userData: UserData(slot: slot, generation: 0, kind: 1))
        let completion = RingSubmissionTests.collect(ring, 1)[0]
        #expect(completion.result > 0)
        let bid = try #require(completion.bufferID)
        buffers.take(bid)
        return bid
    }

    /// A stocked ring keeps cycling through the few buffers it was stocked with and
    /// never touches the rest: a steady stream stays in the cache, and memory beyond the
    /// stock is never made resident.
    @Test func aStreamCyclesThroughTheStockOnly() throws {
        let ring = try Ring(RingOptions(entries: 8))
        let buffers = try ProvidedBufferRing(ring: ring, groupID: 8, count: 16, bufferSize: 4096, stock: 2)
        var fds: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        var used = Set<UInt16>()
        for i in 0..<40 {
            let bid = try Self.recvOnce(ring, buffers, fds, slot: UInt32(i))
            used.insert(bid)
            buffers.recycle(bid)
        }
        // Two in the kernel's ring, and the one just given back on top of the stack.
        #expect(used.count == 3, "used \(used.sorted())")
        #expect(used.allSatisfy { $0 < 3 }, "the buffers at the lowest addresses: \(used.sorted())")
        #expect(buffers.heldCount == 0)
        #expect(buffers.stockTarget == 2)
    }

    /// More recvs completing at once than the stock holds: the one that found the ring
    /// empty gets ENOBUFS, ranDry() doubles the stock from the spare buffers, and the
    /// next recv finds one at once; it doubles again while buffers are spare.
    @Test func runningDryGrowsTheStockFromTheSpareBuffers() throws {
        let ring = try Ring(RingOptions(entries: 8))
        let buffers = try ProvidedBufferRing(ring: ring, groupID: 9, count: 16, bufferSize: 4096, stock: 1)
        var fds: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        // take() restocks at once, so hold the kernel's only buffer without telling the
        // ring: a second recv in the same batch finds the ring empty.
        let message: [UInt8] = Array("burst".utf8)
        #expect(write(fds[1], message, message.count) == message.count)
        ring.prepareRecv(fd: fds[0], from: buffers, userData: UserData(slot: 1, generation: 0, kind: 1))
        let first = RingSubmissionTests.collect(ring, 1)[0]
        #expect(write(fds[1], message, message.count) == message.count)
        ring.prepareRecv(fd: fds[0], from: buffers, userData: UserData(slot: 2, generation: 0, kind: 1))
        #expect(RingSubmissionTests.collect(ring, 1)[0].result == -ENOBUFS)
        buffers.take(try #require(first.bufferID))
        buffers.ranDry()
        #expect(buffers.stockTarget == 2)

        var held = [try #require(first.bufferID)]
        for slot in 3...5 { held.append(try Self.recvOnce(ring, buffers, fds, slot: UInt32(slot))) }
        #expect(Set(held).count == 4 && buffers.heldCount == 4)
        buffers.ranDry()
        #expect(buffers.stockTarget == 4)
        for bid in held { buffers.recycle(bid) }
        #expect(buffers.heldCount == 0)
    }

    /// After a burst, the buffers it touched deep in the stack give their pages back
    /// (they read as zeros again), and the one on top, the next to be stocked, keeps its.
    @Test func buffersLeftDeepInTheStackAfterABurstGiveTheirMemoryBack() throws {
        let ring = try Ring(RingOptions(entries: 8))
        let page = Int(getpagesize())
        let buffers = try ProvidedBufferRing(ring: ring, groupID: 10, count: 8, bufferSize: page, stock: 1)
        var fds: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        var burst: [UInt16] = []
        for slot in 1...4 { burst.append(try Self.recvOnce(ring, buffers, fds, slot: UInt32(slot))) }
        #expect(buffers.touchedCount == 4 && !buffers.hasIdleMemory, "all four are in use")
        for bid in burst { buffers.recycle(bid) }
        #expect(buffers.hasIdleMemory)

        #expect(buffers.releaseIdleMemory() == 3)
        #expect(buffers.touchedCount == 1 && !buffers.hasIdleMemory)
        for bid in burst.dropLast() {
            #expect(buffers.bytes(of: bid, count: 5) == [0, 0, 0, 0, 0], "buffer \(bid) was given back")
        }
        #expect(buffers.bytes(of: burst.last!, count: 5) == Array("stock".utf8), "the top of the stack keeps its pages")
        // The memory given back is used again like any other.
        let again = try Self.recvOnce(ring, buffers, fds, slot: 9)
        #expect(buffers.bytes(of: again, count: 5) == Array("stock".utf8))
        buffers.recycle(again)
    }
}

