// swift-tools-version:6.1
// SparseBridge: dense ↔ weight-sparse transformer bridges for interpretability research.
import PackageDescription

let package = Package(
    name: "SparseBridge",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "SparseBridge", targets: ["Tensors", "HDF5", "Transformers", "Training", "Tasks", "Cluster", "Bridges", "DePass", "Steering", "Circuits", "Reports"]),
        .executable(name: "sparsebridge", targets: ["sparsebridge"]),
    ],
    // `swift build --traits MPI` adds Open MPI (capture and fitting across processes and
    // hosts, docs/scaling.md); the default build neither needs nor links it.
    traits: [
        .trait(name: "MPI", description: "Run capture and fit as one job of many processes under mpirun (Open MPI)."),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // C libraries from Debian's -dev packages. The shims expose C macros as functions.
        .systemLibrary(name: "CHDF5", path: "Sources/CHDF5", providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CLinAlg", path: "Sources/CLinAlg",
                       providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]),
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),

        // Vectorised elementwise kernels (C, one clone per x86 feature level).
        .target(name: "CKernels"),
        .target(name: "Tensors", dependencies: ["CLinAlg", "CKernels"]),
        .target(name: "HDF5", dependencies: ["CHDF5"]),
        .target(name: "Transformers", dependencies: ["Tensors", "HDF5"]),
        .target(name: "Training", dependencies: ["Tensors", "HDF5", "Transformers"]),
        .target(name: "Tasks", dependencies: ["Tensors", "Transformers"]),
        // The processes of a job: one by default, MPI_COMM_WORLD with the MPI trait.
        .target(name: "Cluster", dependencies: [.target(name: "CMPI", condition: .when(traits: ["MPI"]))]),
        .target(name: "Bridges", dependencies: ["Tensors", "HDF5", "Transformers", "Training", "Tasks", "Cluster"]),
        .target(name: "DePass", dependencies: ["Tensors", "HDF5", "Transformers"]),
        .target(name: "Circuits", dependencies: ["Tensors", "Transformers", "Training", "Tasks", "Bridges"]),
        .target(name: "Reports", dependencies: ["Tensors", "HDF5", "Transformers", "Tasks", "Bridges", "DePass", "Steering", "Circuits"]),
        .target(name: "Steering", dependencies: ["Tensors", "Transformers", "Training", "Tasks", "Bridges", "DePass"]),
        .executableTarget(name: "sparsebridge", dependencies: [
            "Tensors", "HDF5", "Transformers", "Training", "Tasks", "Bridges", "DePass", "Steering", "Circuits", "Reports", "Cluster",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Benchmark programs (benchmarks/run.sh runs them beside the PyTorch peers).
        .executableTarget(name: "sparsebridge-bench-forward", dependencies: ["Tensors", "Transformers", "Bridges"],
                          path: "benchmarks/Forward"),
        .executableTarget(name: "sparsebridge-bench-train", dependencies: ["Tensors", "Transformers", "Training", "Tasks"],
                          path: "benchmarks/Train"),
        .executableTarget(name: "sparsebridge-bench-sparse", dependencies: ["Tensors", "Transformers", "Training", "DePass"],
                          path: "benchmarks/Sparse"),
        .executableTarget(name: "sparsebridge-bench-fit", dependencies: ["Tensors", "HDF5", "Bridges"],
                          path: "benchmarks/Fit"),

        // File helpers the test targets share (not a product).
        .target(name: "TestHelpers", path: "Tests/TestHelpers"),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors"]),
        .testTarget(name: "HDF5Tests", dependencies: ["TestHelpers", "HDF5"]),
        .testTarget(name: "TransformersTests", dependencies: ["TestHelpers", "Transformers"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Tasks"]),
        .testTarget(name: "TasksTests", dependencies: ["Tasks"]),
        .testTarget(name: "BridgesTests", dependencies: ["TestHelpers", "Bridges", "Cluster"]),
        .testTarget(name: "CircuitsTests", dependencies: ["Circuits", "Tasks"]),
        .testTarget(name: "DePassTests", dependencies: ["DePass"]),
        .testTarget(name: "SteeringTests", dependencies: ["Steering", "DePass", "Bridges", "Tasks"]),
    ],
    swiftLanguageModes: [.v5]
)
