import PortunusRing

/// Fixed-capacity storage for connection records, indexed by slot, with an intrusive
/// free list. The records are reserved when the worker starts and touched only as slots
/// are first used (slots are handed out from a high-water mark before the free list
/// grows), so memory follows the connections actually held, not the capacity.
final class ConnectionSlab {
    let records: ReservedArray<Connection>
    let capacity: Int
    private var freeHead: Int32 = -1
    /// Slots below this have been used at least once; the ones above are untouched.
    private(set) var highWater: Int32 = 0
    private(set) var inUse = 0

    init(capacity: Int) throws(SystemError) {
        precondition(capacity > 0 && capacity < Int(Int32.max))
        self.capacity = capacity
        records = try ReservedArray(capacity: capacity)
    }

    /// Takes a free slot, or nil when all are in use. Reuses a freed slot first (its
    /// memory is already touched); otherwise takes the next untouched one.
    func acquire() -> Int32? {
        let slot: Int32
        let generation: UInt32
        if freeHead >= 0 {
            slot = freeHead
            freeHead = records[Int(slot)].nextFree
            generation = records[Int(slot)].generation
        } else if Int(highWater) < capacity {
            slot = highWater
            highWater += 1
            generation = 0
        } else {
            return nil
        }
        records[Int(slot)] = Connection()
        records[Int(slot)].generation = generation
        records[Int(slot)].state = .accepted
        inUse += 1
        return slot
    }

    /// Returns a slot whose operations have all completed; bumps its generation.
    func release(_ slot: Int32) {
        let i = Int(slot)
        precondition(records[i].state != .free && records[i].inFlight == 0, "released a busy slot")
        records[i].state = .free
        records[i].generation = (records[i].generation &+ 1) & UserData.generationMask
        records[i].nextFree = freeHead
        freeHead = slot
        inUse -= 1
    }

    /// The record behind `userData` if it is still the same occupant; nil for a stale
    /// completion (the slot was freed or reused since the SQE was submitted).
    @inline(__always)
    func resolve(_ userData: UserData) -> Int32? {
        let slot = Int(userData.slot)
        guard slot < Int(highWater), records[slot].state != .free, records[slot].generation == userData.generation else {
            return nil
        }
        return Int32(slot)
    }

    @inline(__always)
    subscript(slot: Int32) -> Connection {
        _read { yield records[Int(slot)] }
        _modify { yield &records[Int(slot)] }
    }

    @inline(__always)
    func userData(_ slot: Int32, _ kind: UInt8) -> UserData {
        UserData(slot: UInt32(slot), generation: records[Int(slot)].generation, kind: kind)
    }

    /// Every slot currently in use (for shutdown).
    func activeSlots() -> [Int32] {
        (0..<Int(highWater)).compactMap { records[$0].state == .free ? nil : Int32($0) }
    }
}
