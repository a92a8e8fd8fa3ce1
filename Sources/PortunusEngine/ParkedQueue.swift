import PortunusRing

/// FIFO of relay halves waiting for a provided buffer (their recv failed with
/// -ENOBUFS). Fixed capacity, reserved once (two entries per connection slot: a half
/// is parked at most once at a time; entries of closed connections are dropped by
/// `removeAll` when the queue fills). Entries are tagged user_data values, so an entry
/// whose connection has since closed resolves to nothing and is skipped.
struct ParkedQueue {
    private let items: ReservedArray<UInt64>
    private var head = 0
    private(set) var count = 0

    init(capacity: Int) throws(SystemError) {
        items = try ReservedArray(capacity: max(capacity, 1))
    }

    var isEmpty: Bool { count == 0 }

    /// Returns false when full; the caller then compacts with `removeAll(where:)`.
    mutating func push(_ entry: UserData) -> Bool {
        guard count < items.capacity else { return false }
        items[(head + count) % items.capacity] = entry.rawValue
        count += 1
        return true
    }

    mutating func pop() -> UserData? {
        guard count > 0 else { return nil }
        let value = items[head]
        head = (head + 1) % items.capacity
        count -= 1
        return UserData(rawValue: value)
    }

    /// Drops entries for which `isStale` holds, keeping order.
    mutating func removeAll(where isStale: (UserData) -> Bool) {
        var kept: [UInt64] = []
        kept.reserveCapacity(count)
        while let entry = pop() {
            if !isStale(entry) { kept.append(entry.rawValue) }
        }
        for value in kept { _ = push(UserData(rawValue: value)) }
    }
}
