// Reading an inbound PROXY header off a socket without taking a byte of the
// payload behind it. The engine peeks (recv MSG_PEEK) into the connection's
// header area after the bytes it already took, asks `next` what to do, takes
// (recv) exactly the bytes it is told, and peeks again until the header is
// complete. A header can end anywhere in a peek, so whatever the reader says
// to take must provably belong to the header; that is the decoder's
// `.needMore` promise (every byte given so far is header), which the reader
// turns into a count.

/// Tells the engine how many of the bytes it has peeked to take off the
/// socket while reading an inbound PROXY header, so that it never takes a
/// payload byte. Pure and allocation-free; it keeps no state, so the engine
/// keeps only the byte count it has taken.
public enum ProxyHeaderReader {
    /// What to do with the bytes seen so far.
    public enum Step: Sendable, Equatable {
        /// All of `seen[consumed...]` belongs to the header, which is not
        /// complete yet: consume this many more bytes (== seen.count -
        /// consumed; 0 when nothing new was seen), then peek again.
        case consume(Int)
        /// The header is complete and `length` bytes long (length >=
        /// consumed): consume `length - consumed` more bytes, then decode
        /// `seen[0..<length]`, which
        /// ``ProxyHeader/decodeInbound(_:)`` then accepts.
        case complete(length: Int)
        /// These bytes can never start a valid header, or the header would
        /// be longer than `limit`. Drop the connection.
        case reject(ProxyHeaderReader.Rejection)
    }

    /// Why ``next(_:consumed:limit:)`` refused a header.
    public enum Rejection: Sendable, Equatable {
        /// The bytes are not a valid header (the decoder's reason).
        case invalid(ProxyDecodeError)
        /// A v2 header that is `atLeast` bytes long (exactly that many once
        /// its length field has arrived) against a `limit` the caller set.
        case tooLong(atLeast: Int, limit: Int)
    }

    /// Decides what to do with the bytes seen so far on a connection.
    ///
    /// `seen`: the connection's first bytes as far as known: `consumed` bytes
    /// already taken off the socket (all header bytes), then whatever a peek
    /// showed after them. `limit`: the longest header accepted (v1's 107
    /// always fits; v2 up to `limit`, so a v2 header whose length field
    /// says more is refused as soon as that field arrives, before its body).
    ///
    /// Reads nothing past `seen`. The end of the stream before `.complete`
    /// is the caller's to treat as a truncated header. `consumed` past what
    /// this function has asked for is a caller bug and traps.
    public static func next(_ seen: UnsafeRawBufferPointer, consumed: Int, limit: Int) -> Step {
        precondition(consumed >= 0 && consumed <= seen.count, "consumed \(consumed) of \(seen.count) seen bytes")
        // Not `seen.first`: the generic `first` allocated in unoptimised
        // builds (alloc-check.sh).
        let isV2 = !seen.isEmpty && seen[0] == ProxyHeader.v2Signature.0
        if isV2 && seen.count > ProxyHeader.v2FixedLength {
            // The fixed part alone gives the declared length: refuse an
            // oversized header before its TLVs (up to 64 KiB) are walked.
            let fixed = UnsafeRawBufferPointer(rebasing: seen[..<ProxyHeader.v2FixedLength])
            if case .needMore(let total) = ProxyHeader.decodeInbound(fixed), total > limit {
                return .reject(.tooLong(atLeast: total, limit: limit))
            }
        }
        switch ProxyHeader.decodeInbound(seen) {
        case .invalid(let error):
            return .reject(.invalid(error))
        case .needMore(let atLeast):
            if isV2 && atLeast > limit { return .reject(.tooLong(atLeast: atLeast, limit: limit)) }
            // `.needMore` means every byte of `seen` is header (a header is
            // never shorter than a prefix the decoder still accepts).
            return .consume(seen.count - consumed)
        case .complete(let header):
            if isV2 && header.length > limit { return .reject(.tooLong(atLeast: header.length, limit: limit)) }
            precondition(header.length >= consumed, "caller consumed \(consumed) bytes of a \(header.length)-byte header")
            return .complete(length: header.length)
        }
    }
}
