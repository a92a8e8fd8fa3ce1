import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Traffic that tries to make bytes cross connections: streams cut at random points,
/// and tagged round trips that detect any byte that is not their own.
public enum HostileTraffic {
    /// What storm clients upload and storm backends download. A tagged payload starts
    /// with its id (leading zero bytes), so a stale prefix of these is recognised.
    public static let uploadFill: UInt8 = 0xDD
    public static let downloadFill: UInt8 = 0xEE

    /// A backend that streams 4 MiB to each storm connection while discarding what it
    /// receives; every third connection it resets itself after a seeded amount sent.
    public static func floodBackend() throws -> TestBackend {
        try TestBackend(.flood(bytes: 4 << 20, fill: downloadFill) { index in
            guard index % 3 == 2 else { return nil }
            var random = SeededRandom(seed: UInt64(index) &* 0x9E37_79B9)
            return random.next(in: 1...(3 << 20))
        })
    }

    /// One storm connection: streams both ways, and (depending on `k`) the client resets
    /// after a seeded number of bytes received or sent, or runs until the backend resets
    /// or finishes.
    public static func stormConnection(port: UInt16, k: Int, seed: UInt64) {
        var random = SeededRandom(seed: seed &+ UInt64(k) &* 7919)
        guard let client = try? TestSocket.connect("127.0.0.1", port) else { return }
        let outcome: StreamingPeer.Outcome
        switch k % 4 {
        case 0: outcome = StreamingPeer.pump(client.fd, sendBytes: 4 << 20, fill: uploadFill, stopAfterReceived: random.next(in: (64 << 10)...(3 << 20)))
        case 1: outcome = StreamingPeer.pump(client.fd, sendBytes: 4 << 20, fill: uploadFill, stopAfterSent: random.next(in: (64 << 10)...(3 << 20)))
        case 2: outcome = StreamingPeer.pump(client.fd, sendBytes: 4 << 20, fill: uploadFill)
        default: outcome = StreamingPeer.pump(client.fd, sendBytes: 4 << 20, fill: uploadFill, stopAfterReceived: random.next(in: 1...(64 << 10)))
        }
        if outcome.reachedStop { client.resetClose() } else { client.close() }
    }

    /// `connections` storm connections, `concurrency` at a time.
    public static func storm(port: UInt16, connections: Int, concurrency: Int, seed: UInt64) {
        let group = DispatchGroup()
        let gate = DispatchSemaphore(value: concurrency)
        for k in 0..<connections {
            gate.wait()
            group.enter()
            Thread {
                stormConnection(port: port, k: k, seed: seed)
                gate.signal()
                group.leave()
            }.start()
        }
        group.wait()
    }

    /// A payload that names its connection: the id in the first 8 bytes, then bytes
    /// seeded by the id, so a prefix or splice of another connection's bytes cannot match.
    public static func tagged(_ id: Int, size: Int) -> [UInt8] {
        var bytes = randomBytes(size, seed: UInt64(id) &+ 0xA5A5)
        withUnsafeBytes(of: UInt64(id).bigEndian) { tag in
            for i in 0..<min(8, size) { bytes[i] = tag[i] }
        }
        return bytes
    }

    /// Echo round trip of `payload` through `port`: nil when it came back byte-exact,
    /// otherwise a description of what came back instead.
    public static func echoMismatch(port: UInt16, _ payload: [UInt8]) -> String? {
        do {
            let client = try TestSocket.connect("127.0.0.1", port, receiveTimeoutSecs: 30)
            let sender = Thread { try? client.sendAll(payload); client.shutdownWrite() }
            sender.start()
            let echoed = try client.receiveAll()
            if echoed == payload { return nil }
            let firstDiff = zip(echoed, payload).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(echoed.count, payload.count)
            let foreign = echoed.prefix(16).allSatisfy { $0 == uploadFill || $0 == downloadFill }
            return "\(echoed.count) of \(payload.count) bytes, first difference at \(firstDiff)\(foreign ? ", starting with storm bytes" : "")"
        } catch {
            return "\(error)"
        }
    }
}

/// Outcomes gathered from many client threads.
public final class Tally: @unchecked Sendable {
    // @unchecked: every access holds `lock`.
    private let lock = NSLock()
    private var _count = 0
    private var _failures: [String] = []

    public init() {}

    public func record(_ failure: String?) {
        lock.withLock {
            _count += 1
            if let failure { _failures.append(failure) }
        }
    }

    public var count: Int { lock.withLock { _count } }
    public var failures: [String] { lock.withLock { _failures } }
}
