/// The `kind` byte of ``PortunusRing/UserData`` for every operation the engine submits.
/// Per-direction operations come in pairs: `base + Direction.rawValue`.
enum OperationKind: UInt8 {
    case accept = 1          // slot = listener index
    case wake = 2            // poll on the worker's eventfd
    case drainTimer = 3      // end of the shutdown drain budget
    case connect = 4
    case connectTimeout = 5
    case cancel = 6
    case stopAccept = 7      // cancel of a listener's multishot accept on stop
    case acceptRetry = 8     // re-arm a listener after a resource error (slot = listener)
    case prelude = 9         // send of the PROXY header to the upstream
    case preludeTimeout = 10 // its link timeout
    case idleSweep = 11      // the periodic scan for idle connections
    case resolveTimer = 12   // a connection waiting for a name: the connect timeout
    case nameAnswers = 13    // poll on the worker's resolver mailbox
    case udpRecv = 14        // multishot recvmsg on a UDP listen socket (slot = its index)
    case udpSweep = 15       // the periodic scan for idle UDP flows
    case recv = 16           // +1 for .down
    case send = 18
    case poll = 20           // POLLIN ahead of a streaming splice half's next splice in
    // 22 and 24 were ring splices (socket -> pipe, pipe -> socket); splices are now calls.
    case readable = 26       // stand-alone poll of a splice half that holds no pipe
    case writable = 28       // POLLOUT poll on a destination that was full
    case udpFlowRecv = 30    // multishot recvmsg on a flow's upstream socket (slot = flow)
    case udpSend = 32        // a datagram's send (slot = its buffer): .up to the upstream, .down to the client
    case udpCancel = 34      // cancel of a closing flow's upstream recv (slot = flow)
    case udpRetry = 36       // re-arm a UDP recv after the datagram buffers ran out (slot = listen socket)
    case bufferTrim = 38     // give idle provided buffers' memory back (slot 0, direction unused)
    case proxyPeek = 40      // MSG_PEEK recv of a client's inbound PROXY header
    case proxyTake = 42      // the recv that takes exactly the header's bytes off the client

    @inline(__always)
    static func decode(_ raw: UInt8) -> (OperationKind, Direction)? {
        if raw >= OperationKind.recv.rawValue {
            guard let kind = OperationKind(rawValue: raw & ~1) else { return nil }
            return (kind, Direction(rawValue: raw & 1)!)
        }
        guard let kind = OperationKind(rawValue: raw) else { return nil }
        return (kind, .up)
    }

    @inline(__always)
    func raw(_ direction: Direction) -> UInt8 { rawValue + direction.rawValue }
}

/// The two halves of a relay.
enum Direction: UInt8 {
    /// client -> upstream
    case up = 0
    /// upstream -> client
    case down = 1

    @inline(__always) var other: Direction { self == .up ? .down : .up }
}
