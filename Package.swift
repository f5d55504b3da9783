// swift-tools-version: 6.2
import PackageDescription

/// Every target of ours builds in Swift 6 mode with warnings treated as errors.
let strict: [SwiftSetting] = [
    .treatAllWarnings(as: .error),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "Mijian",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mijian", targets: ["mijian"]),
        .executable(name: "mijian-pdftext", targets: ["mijian-pdftext"]),
        .library(name: "MijianCore", targets: ["MijianCore"]),
        .library(name: "MijianHost", targets: ["MijianHost"]),
        .library(name: "MijianChecks", targets: ["MijianChecks"]),
        .library(name: "MijianEvidence", targets: ["MijianEvidence"]),
        .library(name: "MijianTraffic", targets: ["MijianTraffic"]),
        .library(name: "MijianDevices", targets: ["MijianDevices"]),
        .library(name: "MijianCLI", targets: ["MijianCLI"]),
        .library(name: "MijianScan", targets: ["MijianScan"]),
        .library(name: "MijianCollector", targets: ["MijianCollector"]),
        .library(name: "MijianAgent", targets: ["MijianAgent"]),
        .executable(name: "mijian-collector", targets: ["mijian-collector"]),
        .library(name: "MijianTestSupport", targets: ["MijianTestSupport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/jpsim/Yams", "5.0.1"..<"7.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1", traits: []),
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", exact: "2.37.6"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client", exact: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", exact: "2.5.0"),
        .package(url: "https://github.com/vapor/postgres-nio", exact: "1.33.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CUdev",
            pkgConfig: "libudev",
            providers: [.apt(["libudev-dev"])]
        ),
        .systemLibrary(
            name: "CPcap",
            providers: [.apt(["libpcap-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .systemLibrary(
            name: "CPoppler",
            pkgConfig: "poppler",
            providers: [.apt(["libpoppler-private-dev"])]
        ),
        .systemLibrary(
            name: "CZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]
        ),
        .systemLibrary(
            name: "CSQLite",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .target(name: "CNetlink"),
        .target(name: "CMijianSystem"),
        .target(name: "CBase64"),
        .target(
            name: "MijianCore",
            dependencies: [.product(name: "Yams", package: "Yams"), .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .target(
            name: "MijianHost",
            dependencies: ["MijianCore", "CNetlink", "CMijianSystem", "CUdev", "CZlib", "CSQLite", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .target(
            name: "MijianScan",
            dependencies: [
                "MijianCore", "CZlib", "CMijianSystem", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "MijianChecks",
            dependencies: ["MijianCore"],
            swiftSettings: strict
        ),
        .target(
            name: "MijianEvidence",
            dependencies: ["MijianCore", "CBase64", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .target(
            name: "MijianTraffic",
            dependencies: ["MijianCore", "CPcap", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .target(
            name: "MijianDevices",
            dependencies: ["MijianCore", "MijianHost", "CUdev", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .target(
            name: "MijianAgent",
            dependencies: [
                "MijianCore", "MijianHost", "MijianChecks", "MijianEvidence", "MijianTraffic", "MijianDevices", "MijianScan", "CNetlink", "CMijianSystem",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // How both executables run their command trees: exit statuses and streams.
        .target(
            name: "MijianCommandLine",
            dependencies: ["MijianCore", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict
        ),
        .target(
            name: "MijianCLI",
            dependencies: [
                "MijianCommandLine", "MijianCore", "MijianHost", "MijianChecks", "MijianEvidence", "MijianTraffic", "MijianDevices", "MijianAgent", "MijianScan",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "mijian",
            dependencies: ["MijianCLI"],
            swiftSettings: strict
        ),
        // The first page of PDFs through poppler's core library, in a worker process `mijian scan`
        // keeps for many files (Debian libpoppler-private-dev to build, libpoppler126 to run).
        .executableTarget(
            name: "mijian-pdftext",
            dependencies: ["CPoppler"]
        ),
        .target(
            name: "MijianCollector",
            dependencies: [
                "MijianCore", "MijianEvidence", "CZstd",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The collector's command tree; the executable only calls it, as `mijian` calls MijianCLI.
        .target(
            name: "MijianCollectorCLI",
            dependencies: [
                "MijianCollector", "MijianCore", "MijianEvidence", "MijianCommandLine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "mijian-collector",
            dependencies: ["MijianCollectorCLI"],
            swiftSettings: strict
        ),
        .target(
            name: "MijianTestSupport",
            dependencies: ["MijianCore", "MijianDevices"],
            path: "Tests/MijianTestSupport",
            swiftSettings: strict
        ),
        .testTarget(name: "MijianCoreTests", dependencies: ["MijianCore", "MijianTestSupport"], swiftSettings: strict),
        .testTarget(name: "MijianHostTests", dependencies: ["MijianHost", "MijianChecks", "MijianTestSupport", .product(name: "Logging", package: "swift-log")], swiftSettings: strict),
        .testTarget(name: "MijianChecksTests", dependencies: ["MijianChecks", "MijianTestSupport"], swiftSettings: strict),
        .testTarget(name: "MijianEvidenceTests", dependencies: ["MijianEvidence", "MijianTestSupport"], swiftSettings: strict),
        .testTarget(name: "MijianDevicesTests", dependencies: ["MijianDevices", "MijianHost", "MijianChecks", "MijianTestSupport", .product(name: "Logging", package: "swift-log")], swiftSettings: strict),
        .testTarget(name: "MijianTrafficTests", dependencies: ["MijianTraffic", "MijianChecks", "MijianTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "MijianCollectorTests",
            dependencies: [
                "MijianCollector", "MijianEvidence", "MijianTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            exclude: ["Golden", "README.md"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "MijianAgentTests",
            dependencies: ["MijianAgent", "MijianEvidence", "MijianTestSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .testTarget(name: "MijianScanTests", dependencies: ["MijianScan", "MijianChecks", "MijianCLI", "MijianTestSupport", "CZlib"], swiftSettings: strict),
        .testTarget(name: "MijianCLITests", dependencies: ["MijianCLI", "MijianTestSupport"], exclude: ["Snapshots"], swiftSettings: strict),
    ]
)
