// swift-tools-version: 6.2
// The decoder's fuzz target lives in its own package so `-sanitize=fuzzer` never reaches the main
// build. Build and run with scripts/fuzz-traffic.sh.
import PackageDescription

let package = Package(
    name: "MijianFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "Mijian", path: "..")],
    targets: [
        .executableTarget(
            name: "fuzz-traffic",
            dependencies: [
                .product(name: "MijianCore", package: "Mijian"), .product(name: "MijianTraffic", package: "Mijian"),
            ]
        )
    ]
)
