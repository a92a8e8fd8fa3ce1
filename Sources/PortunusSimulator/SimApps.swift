import PortunusProxyProtocol
import PortunusRing

/// A simulated client or backend: the program at the far end of one of the worker's
/// sockets. It writes its stream in random chunks as the socket has room, reads at its
/// own pace (a slow reader pauses for long stretches), may reset the connection at a
/// random point, and checks every byte it reads against what the other end sent.
final class SimApp {
    enum Role {
        /// Client `id` of rule `rule`.
        case client(id: Int, rule: Int)
        /// A backend reached through `endpoint`, serving rule `rule`.
        case backend(endpoint: Int, rule: Int)
    }

    let role: Role
    let socket: SimSocket
    unowned(unsafe) let world: SimWorld
    /// The client this stream belongs to (a backend learns it from the upload's header).
    var id: Int?
    var toSend: Int
    var sent = 0
    var sendDone = false
    /// Payload bytes read (a backend: after the PROXY header).
    var received = 0
    /// All bytes that reached this endpoint, and how many of them were a PROXY header.
    var arrived = 0
    var preludeBytes = 0
    var expectsPrelude: Bool
    /// A client's bytes before its stream: an inbound PROXY header (or not one).
    let preamble: [UInt8]
    private var pending: [UInt8] = []
    var readPausedUntil: Int64 = 0
    let slowReader: Bool
    var resetAfterSent: Int?
    var resetAfterReceived: Int?
    var eof = false
    /// It reset the connection itself, or saw a reset from the forwarder.
    var resetBySelf = false
    var resetByPeer = false
    var finished = false
    var refused = false
    /// Queued in the world's list of apps to run (something changed for it).
    var dirty = false

    init(role: Role, socket: SimSocket, world: SimWorld, toSend: Int, expectsPrelude: Bool, preamble: [UInt8] = []) {
        self.role = role
        self.socket = socket
        self.world = world
        self.preamble = preamble
        self.toSend = toSend + preamble.count
        self.expectsPrelude = expectsPrelude
        slowReader = world.random.chance(world.faults.slowReader)
        if world.random.chance(world.faults.appReset) {
            if world.random.chance(0.5) { resetAfterSent = world.random.int(0...max(0, toSend)) } else {
                resetAfterReceived = world.random.int(0...4096)
            }
        }
        if case let .client(id, _) = role { self.id = id }
        socket.app = self
        peerChanged()
    }

    var isClient: Bool { if case .client = role { true } else { false } }

    /// Something changed on its connection: run it on the world's next turn.
    func peerChanged() {
        guard !dirty && !finished else { return }
        dirty = true
        world.dirtyApps.append(self)
    }

    /// It could do more right away (bytes left to read and not paused, room to write).
    private var hasMoreToDo: Bool {
        let canRead = world.now >= readPausedUntil && (!socket.inbound.isEmpty || (socket.peerShutWrite && !eof))
        return canRead || (!sendDone && id != nil && socket.sendRoom > 0 && sent < toSend)
    }

    /// Bytes of this app's stream at offset `k`.
    private func outgoing(_ k: Int) -> UInt8 {
        if k < preamble.count { return preamble[k] }
        return isClient ? Payload.up(id!, k - preamble.count) : Payload.down(id!, k)
    }

    /// One turn: read what is there (unless paused), write what fits. True if anything moved.
    func act() -> Bool {
        guard !finished else { return false }
        let before = (sent, arrived, eof, finished)
        if socket.wasReset {
            resetByPeer = true
            finish()
            return true
        }
        read()
        guard !finished else { return true }
        write()
        if eof && sendDone { finish() }
        if !finished && hasMoreToDo { peerChanged() }
        return before != (sent, arrived, eof, finished)
    }

    private func read() {
        guard world.now >= readPausedUntil else { return }
        if socket.inbound.isEmpty {
            if socket.peerShutWrite { eof = true; if id == nil { sendDone = true } }
            return
        }
        let n = world.random.int(1...max(1, socket.inbound.count))
        let bytes = Array(socket.inbound.take(n))
        socket.peer?.app?.peerChanged()
        arrived += bytes.count
        if isClient { check(bytes) } else { backendReceive(bytes) }
        if slowReader && world.random.chance(0.3) {
            readPausedUntil = world.now + Int64(world.random.int(1...3000))
            world.pausedApps.append(self)
        }
        if let limit = resetAfterReceived, received >= limit { reset() }
    }

    /// A backend's stream: an optional PROXY header, the client's 8-byte header, payload.
    private func backendReceive(_ bytes: [UInt8]) {
        pending += bytes
        if expectsPrelude {
            switch ProxyHeader.decode(pending) {
            case .needMore: preludeBytes = arrived; return
            case let .invalid(error): world.fail("a backend got an invalid PROXY header: \(error)"); return
            case let .complete(header, consumed):
                expectsPrelude = false
                preludeBytes = consumed
                pending.removeFirst(consumed)
                proxySource = header.source
            }
        }
        if id == nil {
            guard pending.count >= 8 else { return }
            guard let client = Payload.id(fromHeader: Array(pending.prefix(8))), client < world.clientStart.count else {
                world.fail("backend on endpoint \(endpoint): the upload starts with bytes of no client: \(Array(pending.prefix(8)))")
                pending.removeAll()
                return
            }
            id = client
            toSend = world.downloadSize(client)
            world.pair(backend: self, client: client)
            if let source = proxySource, source.port != world.announcedPort(client) {
                world.fail("the PROXY header names port \(source.port), client \(client) is on \(world.announcedPort(client))")
            }
        }
        let payload = pending
        pending.removeAll()
        check(payload)
    }

    private var proxySource: ProxyAddress?

    private var endpoint: Int { if case let .backend(e, _) = role { e } else { -1 } }

    /// Every byte read must be the next byte of the other end's stream.
    private func check(_ bytes: [UInt8]) {
        guard let id else { return }
        for (i, b) in bytes.enumerated() {
            let k = received + i
            let expected = isClient ? Payload.down(id, k) : Payload.up(id, k)
            if b != expected {
                world.fail("\(isClient ? "client" : "backend of client") \(id): byte \(k) is \(b), expected \(expected): not this connection's stream")
                break
            }
        }
        received += bytes.count
    }

    private func write() {
        guard !sendDone, id != nil else { return }
        // Writing to a connection the other side has closed: the kernel answers with an
        // RST, and the write fails (EPIPE).
        if sent < toSend, socket.peer?.closed ?? true {
            resetByPeer = true
            finish()
            return
        }
        let room = socket.sendRoom
        if sent < toSend && room > 0 {
            var n = min(room, toSend - sent)
            n = world.random.int(1...n)
            if let limit = resetAfterSent { n = min(n, max(0, limit - sent)) }
            if n > 0 {
                let bytes = (sent..<(sent + n)).map(outgoing)
                world.appSends(bytes, from: socket)
                sent += n
            }
        }
        if let limit = resetAfterSent, sent >= limit { reset(); return }
        if sent >= toSend {
            sendDone = true
            socket.shutWrite = true
            if let peer = socket.peer { peer.peerShutWrite = true }
        }
    }

    /// SO_LINGER 0 and close: the forwarder's socket sees ECONNRESET.
    func reset() {
        resetBySelf = true
        socket.closed = true
        socket.peer?.receiveReset()
        finish()
    }

    private func finish() {
        guard !finished else { return }
        finished = true
        world.finishedApps += 1
        if !socket.closed {
            socket.closed = true
            if let peer = socket.peer, !peer.wasReset {
                // Unread bytes at close turn the FIN into an RST.
                if socket.inbound.isEmpty { peer.peerShutWrite = true } else { peer.receiveReset() }
            }
        }
    }
}
