import Glibc
import PortunusRing
import Testing
@testable import PortunusEngine

@Suite struct ConnectionSlabTests {
    @Test func staleCompletionForAReusedSlotIsIgnored() throws {
        let slab = try ConnectionSlab(capacity: 1)
        let ring = try Ring(RingOptions(entries: 4))
        let slot = try #require(slab.acquire())
        let old = slab.userData(slot, OperationKind.recv.rawValue)
        ring.prepareNop(userData: old)
        slab.release(slot)
        let again = try #require(slab.acquire())
        #expect(again == slot)
        let current = slab.userData(again, OperationKind.recv.rawValue)
        #expect(current.generation != old.generation)

        var resolved: [Int32?] = []
        while resolved.isEmpty {
            ring.submitAndWait(1)
            ring.reapCompletions { resolved.append(slab.resolve($0.userData)) }
        }
        #expect(resolved == [nil])
        #expect(slab.resolve(current) == slot)
    }

    @Test func fullSlabRefusesAndFreedSlotsComeBack() throws {
        let slab = try ConnectionSlab(capacity: 3)
        let slots = (0..<3).compactMap { _ in slab.acquire() }
        #expect(slots.count == 3)
        #expect(slab.acquire() == nil)
        #expect(slab.inUse == 3)
        slab.release(slots[1])
        #expect(slab.acquire() == slots[1])
    }

    /// Slots are handed out from a high-water mark while the free list is empty, so a
    /// slab sized for a million connections touches only the records in use.
    @Test func freedSlotsAreReusedBeforeUntouchedOnes() throws {
        let slab = try ConnectionSlab(capacity: 1 << 20)
        #expect(slab.records.residentPages() == 0, "a new slab of a million slots is backed by no memory")
        let a = try #require(slab.acquire()), b = try #require(slab.acquire())
        #expect((a, b) == (0, 1) && slab.highWater == 2)
        slab.release(a)
        #expect(slab.acquire() == a)
        #expect(slab.highWater == 2)
        #expect(slab.acquire() == 2 && slab.highWater == 3)
        #expect(slab.records.residentPages() == 1, "three records in use touch one page")
    }

    /// The README's memory formula counts 160 bytes per connection record.
    @Test func aConnectionRecordFitsItsStatedSize() {
        #expect(MemoryLayout<Connection>.stride == 160)
    }

    @Test func operationKindsRoundTripWithDirection() {
        for kind in [OperationKind.recv, .send, .poll, .readable, .writable] {
            for direction in [Direction.up, .down] {
                let decoded = OperationKind.decode(kind.raw(direction))
                #expect(decoded?.0 == kind && decoded?.1 == direction)
            }
        }
        #expect(OperationKind.decode(OperationKind.accept.rawValue)?.0 == .accept)
        #expect(OperationKind.decode(0) == nil)
    }

    @Test func parkedQueueKeepsOrderAndDropsStale() throws {
        var queue = try ParkedQueue(capacity: 3)
        for i in 0..<3 {
            let pushed = queue.push(UserData(slot: UInt32(i), generation: 0, kind: 8))
            #expect(pushed)
        }
        let overflow = queue.push(UserData(slot: 9, generation: 0, kind: 8))
        #expect(!overflow)
        queue.removeAll { $0.slot == 1 }
        #expect(queue.count == 2)
        #expect(queue.pop()?.slot == 0)
        #expect(queue.pop()?.slot == 2)
        #expect(queue.pop() == nil)
    }
}
