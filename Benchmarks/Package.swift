// swift-tools-version: 6.2
// Benchmarks live in their own package so the main build and `swift test` stay lean.
// Run with: cd Benchmarks && swift run -c release bench-NAME   (see Benchmarks/README.md)
import PackageDescription

let package = Package(
    name: "MijianBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Mijian", path: ".."),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", exact: "2.37.6"),
    ],
    targets: [
        // The ingest benchmarks' load client: keep-alive HTTP/1.1 inside TLS, as agents post.
        .target(name: "BenchLoad", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),
        .executableTarget(name: "bench-audit", dependencies: [
            .product(name: "MijianCore", package: "Mijian"), .product(name: "MijianHost", package: "Mijian"),
            .product(name: "MijianChecks", package: "Mijian"),
        ]),
        .executableTarget(name: "bench-evidence", dependencies: [
            .product(name: "MijianCore", package: "Mijian"), .product(name: "MijianEvidence", package: "Mijian"),
        ]),
        .executableTarget(name: "bench-traffic", dependencies: [
            .product(name: "MijianCore", package: "Mijian"), .product(name: "MijianTraffic", package: "Mijian"),
        ]),
        .executableTarget(name: "bench-devices", dependencies: [
            .product(name: "MijianCore", package: "Mijian"), .product(name: "MijianHost", package: "Mijian"),
            .product(name: "MijianDevices", package: "Mijian"), .product(name: "MijianTestSupport", package: "Mijian"),
        ]),
        .executableTarget(name: "bench-postgres", dependencies: [
            "BenchLoad", .product(name: "MijianCore", package: "Mijian"), .product(name: "MijianEvidence", package: "Mijian"),
            .product(name: "MijianCollector", package: "Mijian"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .executableTarget(name: "bench-queries", dependencies: [
            .product(name: "MijianCore", package: "Mijian"), .product(name: "MijianEvidence", package: "Mijian"),
            .product(name: "MijianCollector", package: "Mijian"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .executableTarget(name: "bench-collector", dependencies: [
            "BenchLoad", .product(name: "MijianCore", package: "Mijian"), .product(name: "MijianEvidence", package: "Mijian"),
            .product(name: "MijianCollector", package: "Mijian"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
    ]
)
