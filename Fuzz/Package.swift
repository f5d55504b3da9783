// swift-tools-version: 6.2
// The decoder's fuzz target lives in its own package so `-sanitize=fuzzer` never reaches the main
// build. Build and run with scripts/fuzz-traffic.sh:
//   swift build -c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library --product fuzz-traffic
// SwiftPM links an executable's `main` to `<module>_main` (`--defsym main=fuzz_traffic_main`), which a
// `-parse-as-library` target never emits; the target defines that entry point and hands over to
// libFuzzer's driver (LLVMFuzzerRunDriver) through the small C target beside it.
import PackageDescription

let package = Package(
    name: "MijianFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "Mijian", path: "..")],
    targets: [
        .target(name: "CFuzzerDriver"),
        .executableTarget(
            name: "fuzz-traffic",
            dependencies: [
                "CFuzzerDriver",
                .product(name: "MijianCore", package: "Mijian"), .product(name: "MijianTraffic", package: "Mijian"),
            ]
        ),
    ]
)
