import PortunusRing

/// Fixed-capacity storage for connection records, indexed by slot, with an intrusive
/// free list. Allocated once when the worker starts; nothing is allocated per
/// connection afterwards.
final class ConnectionSlab {
    private let records: UnsafeMutablePointer<Connection>
    let capacity: Int
    private var freeHead: Int32
    private(set) var inUse = 0

    init(capacity: Int) {
        precondition(capacity > 0 && capacity < Int(Int32.max))
        self.capacity = capacity
        records = .allocate(capacity: capacity)
        records.initialize(repeating: Connection(), count: capacity)
        for i in 0..<capacity { records[i].nextFree = i + 1 < capacity ? Int32(i + 1) : -1 }
        freeHead = 0
    }

    deinit {
        records.deinitialize(count: capacity)
        records.deallocate()
    }

    /// Takes a free slot, or nil when all are in use.
    func acquire() -> Int32? {
        guard freeHead >= 0 else { return nil }
        let slot = freeHead
        freeHead = records[Int(slot)].nextFree
        let generation = records[Int(slot)].generation
        records[Int(slot)] = Connection()
        records[Int(slot)].generation = generation
        records[Int(slot)].state = .connecting
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
        guard slot < capacity, records[slot].state != .free, records[slot].generation == userData.generation else {
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
        (0..<capacity).compactMap { records[$0].state == .free ? nil : Int32($0) }
    }
}
