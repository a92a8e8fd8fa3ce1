import Glibc

/// Starts a detached-from-Swift-concurrency OS thread running `body`. Thread entry
/// points live here, not in main.swift, where a closure would inherit @MainActor and
/// trap at run time (IO_URING_NOTES.md).
public func spawnThread(_ body: @escaping @Sendable () -> Void) -> pthread_t {
    final class Box: @unchecked Sendable {
        // @unchecked: handed from the spawning thread to the new one exactly once.
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { raw in
        Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
        return nil
    }, box)
    precondition(rc == 0, "pthread_create failed: \(rc)")
    return thread
}

/// A count-down latch carrying the errors, for worker start-up: the engine waits until
/// every worker has its ring (or one failed), then decides, and only on "go" does any
/// worker arm its accepts (so workers of an engine that fails to start never take a
/// client from a listen socket a reload shares with the running engine).
final class StartupLatch<Failure: Error & Sendable>: @unchecked Sendable {
    // @unchecked: every field is read and written under `mutex`.
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var remaining: Int
    private var failures: [Failure] = []
    private var decision: Bool?

    init(count: Int) {
        remaining = count
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
    }

    deinit {
        pthread_mutex_destroy(&mutex)
        pthread_cond_destroy(&condition)
    }

    func arrive(_ failure: Failure? = nil) {
        pthread_mutex_lock(&mutex)
        if let failure { failures.append(failure) }
        remaining -= 1
        pthread_cond_broadcast(&condition)
        pthread_mutex_unlock(&mutex)
    }

    /// The engine's word once every worker arrived: true to run, false to give up.
    func decide(_ go: Bool) {
        pthread_mutex_lock(&mutex)
        decision = go
        pthread_cond_broadcast(&condition)
        pthread_mutex_unlock(&mutex)
    }

    /// Blocks a worker until the engine decided; true: run.
    func awaitDecision() -> Bool {
        pthread_mutex_lock(&mutex)
        while decision == nil { pthread_cond_wait(&condition, &mutex) }
        let go = decision!
        pthread_mutex_unlock(&mutex)
        return go
    }

    /// Blocks until every party arrived; returns the failures.
    func wait() -> [Failure] {
        pthread_mutex_lock(&mutex)
        while remaining > 0 { pthread_cond_wait(&condition, &mutex) }
        let result = failures
        pthread_mutex_unlock(&mutex)
        return result
    }
}
