import Glibc

/// Signal handling without handlers: every signal the forwarder gives a meaning to, or
/// that would otherwise kill it by default, is blocked in every thread (workers inherit
/// the mask) and the main thread collects them with sigtimedwait, so no code runs in
/// signal context and a stray `kill -USR2` cannot end live connections.
///
/// - SIGTERM, SIGINT: stop accepting, drain, exit 0.
/// - SIGHUP: reload the config file (``PortunusCommand/reload(_:stats:logger:)``).
/// - SIGUSR1: log the per-rule counters now.
/// - SIGUSR2, SIGALRM, SIGIO, SIGPROF, SIGVTALRM, SIGPWR: no meaning; logged at debug and ignored.
/// - SIGPIPE is ignored process-wide (SIG_IGN): a write to a closed peer is an EPIPE result.
enum Signals {
    static let stop: [Int32] = [SIGINT, SIGTERM]
    static let ignored: [Int32] = [SIGUSR2, SIGALRM, SIGIO, SIGPROF, SIGVTALRM, SIGPWR]
    static let watched: [Int32] = stop + [SIGHUP, SIGUSR1] + ignored

    static func block() {
        var set = watchedSet()
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    private static func watchedSet() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for s in watched { sigaddset(&set, s) }
        return set
    }

    /// Waits up to `milliseconds` for a watched signal; nil on timeout.
    static func wait(milliseconds: Int) -> Int32? {
        var set = watchedSet()
        var timeout = timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
        while true {
            let s = sigtimedwait(&set, nil, &timeout)
            if s > 0 { return s }
            if errno == EINTR { continue }
            return nil
        }
    }

    static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        case SIGHUP: "SIGHUP"
        case SIGUSR1: "SIGUSR1"
        case SIGUSR2: "SIGUSR2"
        case SIGALRM: "SIGALRM"
        case SIGIO: "SIGIO"
        case SIGPROF: "SIGPROF"
        case SIGVTALRM: "SIGVTALRM"
        case SIGPWR: "SIGPWR"
        default: "signal \(signal)"
        }
    }
}
