import Glibc

/// Signal handling without handlers: SIGINT, SIGTERM and SIGHUP are blocked in every
/// thread (workers inherit the mask) and the main thread collects them with
/// sigtimedwait, so no code runs in signal context.
enum Signals {
    static let watched: [Int32] = [SIGINT, SIGTERM, SIGHUP]

    static func block() {
        var set = sigset_t()
        sigemptyset(&set)
        for s in watched { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Waits up to `seconds` for a watched signal; nil on timeout.
    static func wait(seconds: Int) -> Int32? {
        var set = sigset_t()
        sigemptyset(&set)
        for s in watched { sigaddset(&set, s) }
        var timeout = timespec(tv_sec: seconds, tv_nsec: 0)
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
        default: "signal \(signal)"
        }
    }
}
