import Testing
@testable import PortunusEngine

/// The relay half's transition table, row by row, without a kernel: each test feeds
/// events and checks the state, the resource hand-overs and the operation returned.
@Suite struct RelayHalfMachineTests {
    typealias Half = RelayHalf

    static func context(closing: Bool = false, held: Int = 0, holdLimit: Int = 4, spliceAfter: Int = 0,
                        pipeToSpare: Bool = true) -> Half.Context {
        Half.Context(closing: closing, bufferSize: 1000, buffersHeldWaiting: held, holdLimit: holdLimit,
                     spliceAfterFullBuffers: spliceAfter, pipeToSpare: pipeToSpare)
    }

    /// A half on the buffers path with a recv in flight.
    static func receiving() -> Half {
        var half = Half()
        #expect(half.handle(.start, context()) == Half.Step(.recv(pollFirst: false)))
        #expect(half.state == .receiving)
        return half
    }

    @Test func bufferRoundTripGivesTheBufferBackAndReadsAgain() {
        var half = Self.receiving()
        #expect(half.handle(.received(bytes: 300, buffer: 7), Self.context()) == Half.Step(.send(dontWait: true)))
        #expect(half.state == .sending(.init(source: .buffer(7), offset: 0, length: 300, filledBuffer: false, holdsBuffer: false)))
        // A recv smaller than the buffer drained the socket: the next one polls first.
        #expect(half.handle(.sent(bytes: 300), Self.context()) == Half.Step(.recv(pollFirst: true), effects: .releaseBuffer, buffer: 7))
        #expect(half.state == .receiving)
    }

    @Test func aFullBufferIsFollowedByAnImmediateRead() {
        var half = Self.receiving()
        _ = half.handle(.received(bytes: 1000, buffer: 1), Self.context())
        #expect(half.handle(.sent(bytes: 1000), Self.context()) == Half.Step(.recv(pollFirst: false), effects: .releaseBuffer, buffer: 1))
    }

    @Test func aShortSendKeepsItsBufferWhileFewAreHeld() {
        var half = Self.receiving()
        _ = half.handle(.received(bytes: 300, buffer: 2), Self.context())
        #expect(half.handle(.sent(bytes: 100), Self.context(held: 3, holdLimit: 4))
            == Half.Step(.send(dontWait: false), effects: .holdBuffer))
        #expect(half.state == .sending(.init(source: .buffer(2), offset: 100, length: 300, filledBuffer: false, holdsBuffer: true)))
        #expect(half.holdsUndeliveredBytes)
        // The waiting send finishes: the hold ends and the buffer goes back.
        #expect(half.handle(.sent(bytes: 200), Self.context(held: 4))
            == Half.Step(.recv(pollFirst: true), effects: [.unholdBuffer, .releaseBuffer], buffer: 2))
    }

    @Test func aSendWaitingAgainCountsItsOwnHoldAsFreed() {
        var half = Self.receiving()
        _ = half.handle(.received(bytes: 300, buffer: 2), Self.context())
        _ = half.handle(.sent(bytes: 100), Self.context(held: 3, holdLimit: 4))
        // Four held, this half one of them: it may keep holding.
        #expect(half.handle(.sent(bytes: 100), Self.context(held: 4, holdLimit: 4))
            == Half.Step(.send(dontWait: false), effects: [.unholdBuffer, .holdBuffer]))
    }

    @Test func aShortSendSpillsItsTailWhenBuffersAreScarce() {
        var half = Self.receiving()
        _ = half.handle(.received(bytes: 300, buffer: 5), Self.context())
        #expect(half.handle(.sendWouldBlock, Self.context(held: 4, holdLimit: 4))
            == Half.Step(.spillThenSend(offset: 0, length: 300), buffer: 5))
        #expect(half.state == .sending(.init(source: .spill, offset: 0, length: 300, filledBuffer: false, holdsBuffer: false)))
        #expect(half.handle(.sent(bytes: 120), Self.context(held: 4, holdLimit: 4)) == Half.Step(.send(dontWait: false)))
        #expect(half.handle(.sent(bytes: 180), Self.context()) == Half.Step(.recv(pollFirst: true), effects: .discardSpill))
    }

    /// Only the first send may find no room: a waiting send that does is reset, not re-sent in a loop.
    @Test func aWaitingSendThatWouldBlockResets() {
        var half = Self.receiving()
        _ = half.handle(.received(bytes: 300, buffer: 2), Self.context())
        #expect(half.handle(.sendWouldBlock, Self.context()) == Half.Step(.send(dontWait: false), effects: .holdBuffer))
        #expect(half.handle(.sendWouldBlock, Self.context(held: 1))
            == Half.Step(.reset, effects: [.unholdBuffer, .releaseBuffer], buffer: 2))
        #expect(half.state == .stopped)
    }

    @Test func noBufferRetriesOrParks() {
        var half = Self.receiving()
        #expect(half.handle(.noBuffer(ringHasFree: true), Self.context()) == Half.Step(.recv(pollFirst: false)))
        #expect(half.state == .receiving)
        #expect(half.handle(.noBuffer(ringHasFree: false), Self.context()) == Half.Step(.park))
        #expect(half.state == .parked)
        #expect(half.handle(.bufferReturned, Self.context()) == Half.Step(.recv(pollFirst: false)))
    }

    @Test func endOfStreamIsPassedOn() {
        var half = Self.receiving()
        #expect(half.handle(.endOfStream, Self.context()) == Half.Step(.passOnEndOfStream))
        #expect(half.state == .finished)
    }

    @Test func anErrorWhileSendingGivesTheBufferBackAndResets() {
        var half = Self.receiving()
        _ = half.handle(.received(bytes: 300, buffer: 9), Self.context())
        _ = half.handle(.sent(bytes: 1), Self.context())
        #expect(half.handle(.failed(errno: 104), Self.context())
            == Half.Step(.reset, effects: [.unholdBuffer, .releaseBuffer], buffer: 9))
        #expect(half.state == .stopped)
    }

    @Test func closingOnlySettlesWhatTheOperationHeld() {
        var half = Self.receiving()
        #expect(half.handle(.received(bytes: 10, buffer: 3), Self.context(closing: true))
            == Half.Step(.none, effects: .releaseBuffer, buffer: 3))
        #expect(half.state == .stopped)

        var sending = Self.receiving()
        _ = sending.handle(.received(bytes: 300, buffer: 4), Self.context())
        _ = sending.handle(.sendWouldBlock, Self.context(held: 9, holdLimit: 4))   // spilled
        #expect(sending.handle(.sent(bytes: 100), Self.context(closing: true)) == Half.Step(.none, effects: .discardSpill))
    }

    /// Auto mode: full recvs in a row move the half to splice (when a pipe is to spare),
    /// and a drained stream brings it back to buffers, giving its pipe back.
    @Test func autoHalfMovesToSpliceAndBack() {
        var half = Self.receiving()
        let auto = Self.context(spliceAfter: 2)
        _ = half.handle(.received(bytes: 1000, buffer: 0), auto)
        #expect(half.handle(.sent(bytes: 1000), auto) == Half.Step(.recv(pollFirst: false), effects: .releaseBuffer, buffer: 0))
        #expect(half.path == .buffers(fullStreak: 1))
        _ = half.handle(.received(bytes: 1000, buffer: 1), auto)
        #expect(half.handle(.sent(bytes: 1000), auto) == Half.Step(.pollReadable, effects: [.releaseBuffer, .countSplicedHalf], buffer: 1))
        #expect(half.path == .splice(returnsToBuffers: true) && half.state == .awaitingReadable)
        #expect(half.handle(.readable, auto) == Half.Step(.takePipe))
        #expect(half.handle(.pipe, auto) == Half.Step(.spliceIn))
        #expect(half.handle(.splicedIn(bytes: 1000), auto) == Half.Step(.spliceOut))
        // Streaming: the pipe is kept and the next splice waits for a poll.
        half.pipeRead = 10
        #expect(half.handle(.splicedOut(pipeEmpty: true), auto) == Half.Step(.pollThenSpliceIn))
        #expect(half.handle(.splicedIn(bytes: 40), auto) == Half.Step(.spliceOut))
        #expect(half.handle(.splicedOut(pipeEmpty: false), auto) == Half.Step(.pollWritable))
        #expect(half.state == .awaitingWritable(lastIn: 40) && half.holdsUndeliveredBytes)
        #expect(half.handle(.writable, auto) == Half.Step(.spliceOut))
        #expect(half.handle(.splicedOut(pipeEmpty: true), auto) == Half.Step(.recv(pollFirst: false), effects: .givePipeBack))
        #expect(half.path == .buffers(fullStreak: 0) && half.state == .receiving)
    }

    @Test func autoHalfStaysOnBuffersWithoutAPipeToSpare() {
        var half = Self.receiving()
        let noPipes = Self.context(spliceAfter: 1, pipeToSpare: false)
        _ = half.handle(.received(bytes: 1000, buffer: 0), noPipes)
        #expect(half.handle(.sent(bytes: 1000), noPipes).operation == .recv(pollFirst: false))
        #expect(half.path == .buffers(fullStreak: 1))
    }

    @Test func spliceHalfWithoutAPipeReadsOnceThroughABuffer() {
        var half = Half(path: .splice(returnsToBuffers: false))
        #expect(half.handle(.start, Self.context()) == Half.Step(.pollReadable))
        _ = half.handle(.readable, Self.context())
        #expect(half.handle(.noPipe, Self.context()) == Half.Step(.recv(pollFirst: false)))
        _ = half.handle(.received(bytes: 1000, buffer: 6), Self.context())
        #expect(half.handle(.sent(bytes: 1000), Self.context()) == Half.Step(.pollReadable, effects: .releaseBuffer, buffer: 6))
        #expect(half.path == .splice(returnsToBuffers: false))
    }

    /// A splice in that finds nothing after the poll said readable (TCP urgent data
    /// stops a splice, not a recv) reads once through a buffer instead of polling again,
    /// which would loop for ever; after it, the half splices again.
    @Test func spliceInThatWouldBlockReadsOnceThroughABuffer() {
        var half = Half(path: .splice(returnsToBuffers: false))
        _ = half.handle(.start, Self.context())
        _ = half.handle(.readable, Self.context())
        _ = half.handle(.pipe, Self.context())
        // The worker's acquirePipe gave it this pipe.
        half.pipeRead = 10
        half.pipeWrite = 11
        #expect(half.handle(.spliceInWouldBlock, Self.context()) == Half.Step(.recv(pollFirst: false)))
        #expect(half.handle(.received(bytes: 3, buffer: 7), Self.context()) == Half.Step(.send(dontWait: true)))
        #expect(half.handle(.sent(bytes: 3), Self.context()) == Half.Step(.pollThenSpliceIn, effects: .releaseBuffer, buffer: 7))
        #expect(half.path == .splice(returnsToBuffers: false))
        #expect(half.handle(.endOfStream, Self.context()) == Half.Step(.passOnEndOfStream, effects: .givePipeBack))
    }

    /// An event that no row accepts is a defect: the process stops, naming state and event.
    @Test func anEventOutsideTheTableTraps() async {
        await #expect(processExitsWith: .failure) {
            var half = RelayHalf()
            _ = half.handle(.sent(bytes: 1), RelayHalfMachineTests.context())
        }
        await #expect(processExitsWith: .failure) {
            var half = RelayHalf()
            _ = half.handle(.endOfStream, RelayHalfMachineTests.context(closing: true))
        }
        // While closing too, only what the operation in flight can report is accepted:
        // a recv's buffer arriving for a half that is sending would be a leak.
        await #expect(processExitsWith: .failure) {
            var half = RelayHalfMachineTests.receiving()
            _ = half.handle(.received(bytes: 300, buffer: 2), RelayHalfMachineTests.context())
            _ = half.handle(.received(bytes: 10, buffer: 3), RelayHalfMachineTests.context(closing: true))
        }
    }
}
