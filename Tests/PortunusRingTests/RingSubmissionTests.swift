import Glibc
import Testing
@testable import PortunusRing

/// The SQE choke point and chain reservation, on real rings.
@Suite struct RingSubmissionTests {
    /// Waits for and collects exactly `count` completions.
    static func collect(_ ring: Ring, _ count: Int) -> [Completion] {
        var out: [Completion] = []
        while out.count < count {
            ring.submitAndWait(1)
            ring.reapCompletions { out.append($0) }
        }
        return out
    }

    @Test func oneEntrySQTakesMoreOperationsThanFit() throws {
        let ring = try Ring(RingOptions(entries: 1))
        #expect(ring.submissionEntries == 1)
        for i in 0..<5 {
            ring.prepareNop(userData: UserData(slot: UInt32(i), generation: 0, kind: 1))
        }
        // Every NOP after the first found the SQ full and flushed it: nothing dropped.
        #expect(ring.forcedFlushes == 4)
        let completions = Self.collect(ring, 5)
        #expect(completions.map(\.userData.slot).sorted() == [0, 1, 2, 3, 4])
        #expect(completions.allSatisfy { $0.result == 0 })
    }

    @Test func reservedChainIsSubmittedWhole() throws {
        let ring = try Ring(RingOptions(entries: 4))
        for i in 0..<3 { ring.prepareNop(userData: UserData(slot: UInt32(i), generation: 0, kind: 1)) }
        #expect(ring.pendingSubmissions == 3)
        ring.reserve(2)
        #expect(ring.forcedFlushes == 1)
        #expect(ring.pendingSubmissions == 0)
        // Head fails (-ENOENT: no such request to cancel); an intact link cancels the tail.
        ring.prepareCancel(UserData(rawValue: 0xDEAD), userData: UserData(slot: 10, generation: 0, kind: 2), options: .link)
        ring.prepareNop(userData: UserData(slot: 11, generation: 0, kind: 3))
        let completions = Self.collect(ring, 5)
        let head = completions.first { $0.userData.slot == 10 }!
        let tail = completions.first { $0.userData.slot == 11 }!
        #expect(head.result == -ENOENT)
        #expect(tail.result == -ECANCELED)
    }

    /// The hazard `reserve` exists for: without it the SQ fills between the two SQEs,
    /// the head goes out alone, and the tail runs as if it were never linked.
    @Test func unreservedChainSplitsAcrossSubmissions() throws {
        let ring = try Ring(RingOptions(entries: 4))
        for i in 0..<3 { ring.prepareNop(userData: UserData(slot: UInt32(i), generation: 0, kind: 1)) }
        ring.prepareCancel(UserData(rawValue: 0xDEAD), userData: UserData(slot: 10, generation: 0, kind: 2), options: .link)
        ring.prepareNop(userData: UserData(slot: 11, generation: 0, kind: 3))
        let completions = Self.collect(ring, 5)
        #expect(completions.first { $0.userData.slot == 11 }!.result == 0)
    }

    @Test func linkTimeoutCancelsAStuckOperation() throws {
        let ring = try Ring(RingOptions(entries: 8))
        var fds: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        let timeout = PinnedTimeout(milliseconds: 50)
        ring.reserve(2)
        ring.preparePoll(fd: fds[0], events: .readable, userData: UserData(slot: 1, generation: 0, kind: 1), options: .link)
        ring.prepareLinkTimeout(timeout, userData: UserData(slot: 2, generation: 0, kind: 2))
        let completions = Self.collect(ring, 2)
        #expect(completions.first { $0.userData.slot == 1 }!.result == -ECANCELED)
        #expect(completions.first { $0.userData.slot == 2 }!.result == -ETIME)
    }

    @Test func userDataPacksSlotGenerationAndKind() {
        let ud = UserData(slot: 0xFFFF_FFFF, generation: 0x12_3456, kind: 0xAB)
        #expect(ud.slot == 0xFFFF_FFFF)
        #expect(ud.generation == 0x12_3456)
        #expect(ud.kind == 0xAB)
        // The generation wraps within its 24 bits instead of spilling into the slot.
        let wrapped = UserData(slot: 7, generation: 0x0100_0001, kind: 1)
        #expect(wrapped.slot == 7 && wrapped.generation == 1)
    }
}
