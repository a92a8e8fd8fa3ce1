/// BLAKE3 (https://github.com/BLAKE3-team/BLAKE3-specs), hash mode only, written from
/// the specification: Portunus names a rule in its stats by the first 8 bytes of
/// BLAKE3(rule name), and dashboards keep those ids, so ours must be the same bits.
/// Not for the hot path: it hashes a few rule names at start-up. Checked against the
/// `b3sum` Debian package in the tests, across chunk and tree boundaries.
public enum BLAKE3 {
    static let iv: [UInt32] = [0x6A09_E667, 0xBB67_AE85, 0x3C6E_F372, 0xA54F_F53A, 0x510E_527F, 0x9B05_688C, 0x1F83_D9AB, 0x5BE0_CD19]
    static let permutation = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8]
    static let chunkStart: UInt32 = 1, chunkEnd: UInt32 = 2, parent: UInt32 = 4, root: UInt32 = 8
    static let blockBytes = 64, chunkBytes = 1024

    /// The first `length` bytes of the hash of `input` (32 is the standard digest).
    public static func hash(_ input: [UInt8], length: Int = 32) -> [UInt8] {
        var stack: [[UInt32]] = []   // chaining values of complete subtrees, left to right
        var chunk = 0
        // Every chunk but the last is finished here; the last one may be the root.
        while (chunk + 1) * chunkBytes < input.count {
            var cv = chunkOutput(input, chunk: chunk).chainingValue
            var finished = chunk + 1
            // A subtree is complete for each trailing zero bit of the chunk count.
            while finished & 1 == 0 {
                cv = parentOutput(stack.removeLast(), cv).chainingValue
                finished >>= 1
            }
            stack.append(cv)
            chunk += 1
        }
        var output = chunkOutput(input, chunk: chunk)
        while let left = stack.popLast() {
            output = parentOutput(left, output.chainingValue)
        }
        return output.rootBytes(length)
    }

    /// A rule's id in the stats: the hash's first 8 bytes read as a little-endian u64.
    public static func ruleID(_ name: String) -> UInt64 {
        hash(Array(name.utf8), length: 8).enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    }

    /// What one compression will be, before it is decided whether it is the root.
    struct Output {
        let cv: [UInt32]
        let block: [UInt32]
        let counter: UInt64
        let blockLength: UInt32
        let flags: UInt32

        var chainingValue: [UInt32] { Array(compress(cv, block, counter, blockLength, flags)[0..<8]) }

        func rootBytes(_ length: Int) -> [UInt8] {
            var out: [UInt8] = []
            out.reserveCapacity(length)
            var blockCounter: UInt64 = 0
            while out.count < length {
                for word in compress(cv, block, blockCounter, blockLength, flags | root) {
                    for shift in stride(from: 0, to: 32, by: 8) where out.count < length {
                        out.append(UInt8(truncatingIfNeeded: word >> UInt32(shift)))
                    }
                }
                blockCounter += 1
            }
            return out
        }
    }

    /// Chunk `chunk` of `input` compressed up to its last block, which is left as an Output.
    static func chunkOutput(_ input: [UInt8], chunk: Int) -> Output {
        let start = chunk * chunkBytes, end = min(start + chunkBytes, input.count)
        var cv = iv
        var offset = start
        var blockIndex = 0
        while true {
            let blockEnd = min(offset + blockBytes, end)
            let words = blockWords(input, offset, blockEnd)
            var flags: UInt32 = blockIndex == 0 ? chunkStart : 0
            if blockEnd == end {
                flags |= chunkEnd
                return Output(cv: cv, block: words, counter: UInt64(chunk), blockLength: UInt32(blockEnd - offset), flags: flags)
            }
            cv = Array(compress(cv, words, UInt64(chunk), UInt32(blockBytes), flags)[0..<8])
            offset = blockEnd
            blockIndex += 1
        }
    }

    static func parentOutput(_ left: [UInt32], _ right: [UInt32]) -> Output {
        Output(cv: iv, block: left + right, counter: 0, blockLength: UInt32(blockBytes), flags: parent)
    }

    /// Bytes `start..<end` (at most 64) as 16 little-endian words, zero-padded.
    static func blockWords(_ input: [UInt8], _ start: Int, _ end: Int) -> [UInt32] {
        var words = [UInt32](repeating: 0, count: 16)
        for i in start..<end {
            words[(i - start) / 4] |= UInt32(input[i]) << (8 * UInt32((i - start) % 4))
        }
        return words
    }

    static func compress(_ cv: [UInt32], _ block: [UInt32], _ counter: UInt64, _ blockLength: UInt32, _ flags: UInt32) -> [UInt32] {
        var s = cv + Array(iv[0..<4]) + [UInt32(truncatingIfNeeded: counter), UInt32(truncatingIfNeeded: counter >> 32), blockLength, flags]
        var m = block
        for round in 0..<7 {
            mix(&s, 0, 4, 8, 12, m[0], m[1])
            mix(&s, 1, 5, 9, 13, m[2], m[3])
            mix(&s, 2, 6, 10, 14, m[4], m[5])
            mix(&s, 3, 7, 11, 15, m[6], m[7])
            mix(&s, 0, 5, 10, 15, m[8], m[9])
            mix(&s, 1, 6, 11, 12, m[10], m[11])
            mix(&s, 2, 7, 8, 13, m[12], m[13])
            mix(&s, 3, 4, 9, 14, m[14], m[15])
            if round < 6 { m = permutation.map { m[$0] } }
        }
        for i in 0..<8 {
            s[i] ^= s[i + 8]
            s[i + 8] ^= cv[i]
        }
        return s
    }

    @inline(__always)
    static func mix(_ s: inout [UInt32], _ a: Int, _ b: Int, _ c: Int, _ d: Int, _ x: UInt32, _ y: UInt32) {
        s[a] = s[a] &+ s[b] &+ x
        s[d] = rotateRight(s[d] ^ s[a], 16)
        s[c] = s[c] &+ s[d]
        s[b] = rotateRight(s[b] ^ s[c], 12)
        s[a] = s[a] &+ s[b] &+ y
        s[d] = rotateRight(s[d] ^ s[a], 8)
        s[c] = s[c] &+ s[d]
        s[b] = rotateRight(s[b] ^ s[c], 7)
    }

    @inline(__always)
    static func rotateRight(_ x: UInt32, _ n: UInt32) -> UInt32 { x >> n | x << (32 - n) }
}
