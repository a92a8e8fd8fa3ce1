// swift-tools-version:6.1
//
// portunus-uring: an io_uring TCP/UDP port forwarder.
// Dependency arrows are one-way (README, "How it is built"):
//   portunus-uring (executable) -> PortunusEngine -> PortunusRing -> CLiburing
//   PortunusEngine -> PortunusConfig, PortunusProxyProtocol, PortunusResolver -> CCares
//   PortunusConfig and PortunusProxyProtocol depend on nothing of ours.
//   PortunusMetrics (the Prometheus endpoint) -> PortunusStats (the /proc figures), PortunusEngine, PortunusConfig;
//   nothing of ours imports it but the executable.
//   PortunusSimulator (tests and portunus-sim only) -> PortunusEngine through its
//   Simulation SPI: the worker driven against a simulated kernel.
import PackageDescription

let package = Package(
    name: "portunus-uring",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "portunus-uring", targets: ["portunus-uring"]),
        // Library products only so that the separate package in Benchmarks/Micro can
        // depend on the modules by path; nothing else is meant to link them.
        .library(name: "PortunusProxyProtocol", targets: ["PortunusProxyProtocol"]),
        .library(name: "PortunusConfig", targets: ["PortunusConfig"]),
        .library(name: "PortunusEngine", targets: ["PortunusEngine"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // The Prometheus text format, as the Swift server ecosystem writes it; it brings
        // swift-metrics' CoreMetrics (2.13.0 here) and swift-atomics, no Foundation and no
        // SwiftNIO. swift-metrics is not listed itself: no target of ours uses its API.
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // liburing from Debian's liburing-dev; shim.h re-exports what Swift cannot import.
        .systemLibrary(
            name: "CLiburing",
            path: "CLiburing",
            pkgConfig: "liburing",
            providers: [.apt(["liburing-dev"])]
        ),
        // c-ares from Debian's libc-ares-dev; shim.h re-exports its function-like macros.
        .systemLibrary(
            name: "CCares",
            path: "CCares",
            pkgConfig: "libcares",
            providers: [.apt(["libc-ares-dev"])]
        ),
        // DNS for DNS-named targets: a thread of its own running c-ares, a cache with the
        // TTL, stale and negative rules, answers posted to each worker. The only Swift
        // code that imports CCares; knows nothing of io_uring.
        .target(
            name: "PortunusResolver",
            dependencies: ["CCares", .product(name: "Logging", package: "swift-log")]
        ),
        // The only Swift code that imports CLiburing.
        .target(name: "PortunusRing", dependencies: ["CLiburing"]),
        // TOML -> validated, immutable, typed model. Knows nothing of io_uring. Its TOML 1.0
        // parser is its own, standard library only: TOMLKit pulled Foundation (7 MB resident)
        // into the forwarder and never freed a parsed table.
        .target(name: "PortunusConfig"),
        // PROXY protocol v1/v2 encode and decode: pure Swift, no Foundation, no liburing.
        .target(name: "PortunusProxyProtocol"),
        // Workers (one ring per core), connection slab, relay state machines.
        .target(
            name: "PortunusEngine",
            dependencies: [
                "PortunusRing", "PortunusConfig", "PortunusProxyProtocol", "PortunusResolver",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // A deterministic simulation of the kernel behind the worker's seam (WorkerIO),
        // for the tests and the portunus-sim tool; not part of the forwarder.
        .target(
            name: "PortunusSimulator",
            dependencies: [
                "PortunusEngine", "PortunusRing", "PortunusConfig", "PortunusProxyProtocol",
                .product(name: "Logging", package: "swift-log"),
            ],
            // The simulator's own code only (not the engine it drives): it is run by the
            // ten thousand seeds, and its objects are touched by one thread, so the
            // dynamic exclusivity checks on every class property access are dropped.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]
        ),
        .executableTarget(name: "portunus-sim", dependencies: ["PortunusSimulator"]),
        // What operators watch: the stats socket's documents (Portunus's shapes, rule ids
        // by BLAKE3), its server thread, and the `stats` client and dashboard.
        .target(
            name: "PortunusStats",
            dependencies: [
                "PortunusEngine", "PortunusConfig", "PortunusRing",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The optional Prometheus endpoint (`[metrics] listen`): a snapshot of the engine's
        // counters turned into the text format at scrape time, served by a small HTTP/1.1
        // server on a thread of its own, off the workers' path.
        .target(
            name: "PortunusMetrics",
            dependencies: [
                "PortunusEngine", "PortunusConfig", "PortunusResolver", "PortunusStats",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "portunus-uring",
            dependencies: [
                "PortunusEngine", "PortunusConfig", "PortunusResolver", "PortunusStats", "PortunusMetrics",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Blocking-socket helpers, echo servers and process runners shared by the tests
        // (and the simulator's seeded generator, so there is one).
        .target(name: "TestSupport", dependencies: ["PortunusSimulator"], path: "Tests/TestSupport"),
        .testTarget(name: "PortunusRingTests", dependencies: ["PortunusRing"]),
        // TestSupport for runFiltering: Python's tomllib is the TOML parser's oracle.
        .testTarget(name: "PortunusConfigTests", dependencies: ["PortunusConfig", "TestSupport"]),
        .testTarget(name: "PortunusProxyProtocolTests", dependencies: ["PortunusProxyProtocol"]),
        .testTarget(name: "PortunusResolverTests", dependencies: ["PortunusResolver", "TestSupport", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "PortunusSimulatorTests", dependencies: ["PortunusSimulator", "TestSupport"]),
        .testTarget(name: "PortunusMetricsTests", dependencies: [
            "PortunusMetrics", "PortunusEngine", "PortunusConfig", "PortunusResolver", "TestSupport", .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "PortunusStatsTests", dependencies: ["PortunusStats", "PortunusConfig", "PortunusEngine", "TestSupport"]),
        .testTarget(
            name: "PortunusEngineTests",
            dependencies: [
                "PortunusEngine", "PortunusConfig", "PortunusRing", "PortunusProxyProtocol", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Runs the real binary (built by `swift build` first) against real backends on loopback.
        .testTarget(name: "IntegrationTests", dependencies: ["TestSupport", "PortunusProxyProtocol", "PortunusStats"]),
    ]
)
