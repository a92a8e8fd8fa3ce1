// swift-tools-version:6.1
//
// Micro-benchmarks for portunus-uring (ordo-one/benchmark, a.k.a. package-benchmark).
//
// A package of its own, depending on the forwarder by path, so that `swift build` of
// the forwarder (CI runs it on every submission) never resolves or compiles the
// benchmark framework (+35 s on its clean build, measured on two cores). Run from here:
//
//   swift package --disable-sandbox benchmark                      # run, print tables
//   swift package --disable-sandbox benchmark thresholds check     # compare with Thresholds/
//   swift package --disable-sandbox benchmark thresholds check --metric mallocCountTotal
//   swift package --disable-sandbox --allow-writing-to-package-directory \
//       benchmark thresholds update                                 # re-record Thresholds/
//
// `--disable-sandbox` because the engine benchmark opens sockets on 127.0.0.1.
// The plugin only runs executable targets whose directory sits directly in a folder
// named `Benchmarks`, hence Benchmarks/Micro/Benchmarks/<Suite>.
import PackageDescription

let package = Package(
    name: "portunus-micro-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // `name:` pins the identity: a path dependency is otherwise known by its folder's
        // name ("main" in /work/main, anything in a CI clone), which `package:` below
        // would have to follow.
        .package(name: "portunus-uring", path: "../.."),
        // MallocInterposer is the only trait wanted: it counts every malloc in the
        // process (all threads). Naming the traits also leaves out the default
        // RuntimeInterposer and the swift-runtime-interposer package it pulls in on Linux
        // with Swift 6.3; it only serves ARC metrics, which no suite uses (the run prints
        // a note that it skips preloading it).
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // The config suite's peer: the TOML parser PortunusConfig used before it had its own
        // (TOMLKit, over the C++ toml++).
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
    ],
    targets: [
        // PROXY v1/v2 encode into caller storage and decode from raw bytes.
        .executableTarget(
            name: "ProxyCodecBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "PortunusProxyProtocol", package: "portunus-uring"),
            ],
            path: "Benchmarks/ProxyCodec",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // ConfigLoader.parse of a generated 1,000-rule file and our TOML parser alone on it,
        // against TOMLKit alone.
        .executableTarget(
            name: "ConfigParseBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "PortunusConfig", package: "portunus-uring"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ],
            path: "Benchmarks/ConfigParse",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // One engine worker relaying sequential loopback connections to an echo thread,
        // against the same client talking to the echo thread directly.
        .executableTarget(
            name: "EngineRelayBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "PortunusEngine", package: "portunus-uring"),
                .product(name: "PortunusConfig", package: "portunus-uring"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/EngineRelay",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
