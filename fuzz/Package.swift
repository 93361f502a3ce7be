// swift-tools-version:6.1
// libFuzzer targets for SparseBridge's parsers of untrusted files (docs/reliability.md).
// A package of its own, so the main package never needs the fuzzer flags; `make fuzz` builds
// it with `-sanitize=fuzzer,address` and runs each target for a set time.
import PackageDescription

let fuzzTargets = ["safetensors", "hdf5-files", "json", "tokenizer", "torch"]

let package = Package(
    name: "SparseBridgeFuzz",
    dependencies: [.package(name: "SparseBridge", path: "..")],
    targets: [
        .systemLibrary(name: "CLibFuzzer", path: "Sources/CLibFuzzer"),
        .target(name: "FuzzSupport", dependencies: ["CLibFuzzer"], path: "Sources/FuzzSupport"),
    ] + fuzzTargets.map { name in
        .executableTarget(name: "fuzz-" + name, dependencies: [
            "FuzzSupport", .product(name: "SparseBridge", package: "SparseBridge"),
        ], path: "Sources/" + name)
    },
    swiftLanguageModes: [.v5]
)
