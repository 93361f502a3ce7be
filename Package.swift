// swift-tools-version:6.1
// SparseBridge: dense ↔ weight-sparse transformer bridges for interpretability research.
import PackageDescription

let package = Package(
    name: "SparseBridge",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "SparseBridge", targets: [
            "Support", "Tensors", "HDF5", "Text", "Model", "Checkpoints", "Training", "Tasks", "Cluster", "Bridges", "DePass",
            "Steering", "Circuits", "Study",
        ]),
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
        // What every floor may use: JSON values, SHA-256, atomic outputs, error and progress lines.
        .target(name: "Support"),
        .target(name: "Tensors", dependencies: ["Support", "CLinAlg", "CKernels"]),
        .target(name: "HDF5", dependencies: ["Support", "CHDF5"]),
        .target(name: "Text", dependencies: ["Support", "Tensors"]),
        .target(name: "Model", dependencies: ["Support", "Tensors", "HDF5", "Text"]),
        .target(name: "Checkpoints", dependencies: ["Support", "Tensors", "HDF5", "Text", "Model"]),
        .target(name: "Training", dependencies: ["Support", "Tensors", "HDF5", "Text", "Model"]),
        .target(name: "Tasks", dependencies: ["Support", "Tensors", "Text", "Model"]),
        // The processes of a job: one by default, MPI_COMM_WORLD with the MPI trait.
        .target(name: "Cluster", dependencies: ["Support", .target(name: "CMPI", condition: .when(traits: ["MPI"]))]),
        .target(name: "Bridges", dependencies: ["Support", "Tensors", "HDF5", "Text", "Model", "Tasks", "Cluster"]),
        .target(name: "DePass", dependencies: ["Support", "Tensors", "HDF5", "Text", "Model", "Training", "Tasks"]),
        .target(name: "Circuits", dependencies: ["Support", "Tensors", "Text", "Model", "Training", "Tasks", "Bridges"]),
        .target(name: "Study", dependencies: [
            "Support", "Tensors", "HDF5", "Text", "Model", "Checkpoints", "Tasks", "Bridges", "DePass", "Steering", "Circuits",
        ]),
        .target(name: "Steering", dependencies: ["Support", "Tensors", "Text", "Model", "Training", "Tasks", "Bridges", "DePass"]),
        .executableTarget(name: "sparsebridge", dependencies: [
            "Support", "Tensors", "HDF5", "Text", "Model", "Checkpoints", "Training", "Tasks", "Bridges", "DePass", "Steering",
            "Circuits", "Study", "Cluster",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Benchmark programs (benchmarks/run.sh runs them beside the PyTorch peers).
        .executableTarget(name: "sparsebridge-bench-forward", dependencies: ["Tensors", "Model", "Checkpoints", "Bridges"],
                          path: "benchmarks/Forward"),
        .executableTarget(name: "sparsebridge-bench-train", dependencies: ["Tensors", "Text", "Model", "Training", "Tasks"],
                          path: "benchmarks/Train"),
        .executableTarget(name: "sparsebridge-bench-sparse", dependencies: ["Tensors", "Model", "Checkpoints", "Training", "DePass"],
                          path: "benchmarks/Sparse"),
        .executableTarget(name: "sparsebridge-bench-fit", dependencies: ["Tensors", "HDF5", "Bridges"],
                          path: "benchmarks/Fit"),

        // File helpers the test targets share (not a product).
        .target(name: "TestHelpers", path: "Tests/TestHelpers"),
        // Small random models and files the Model, Checkpoints and Text tests share (not a product).
        .target(name: "ModelFixtures", dependencies: ["TestHelpers", "Support", "Tensors", "Text", "Model"], path: "Tests/ModelFixtures"),
        .testTarget(name: "SupportTests", dependencies: ["TestHelpers", "Support"]),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors"]),
        .testTarget(name: "HDF5Tests", dependencies: ["TestHelpers", "HDF5"]),
        .testTarget(name: "TextTests", dependencies: ["ModelFixtures", "Text", "Model", "Checkpoints"]),
        .testTarget(name: "ModelTests", dependencies: ["ModelFixtures", "Model"]),
        .testTarget(name: "CheckpointsTests", dependencies: ["ModelFixtures", "Model", "Checkpoints"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Tasks", "Support", "Text", "Model"]),
        .testTarget(name: "TasksTests", dependencies: ["Tasks", "Support", "Text", "Model"]),
        .testTarget(name: "BridgesTests", dependencies: ["TestHelpers", "Bridges", "Cluster", "Support", "Text", "Model"]),
        .testTarget(name: "CircuitsTests", dependencies: ["Circuits", "Tasks", "Support", "Text", "Model"]),
        .testTarget(name: "DePassTests", dependencies: ["DePass", "Support", "Text", "Model"]),
        .testTarget(name: "SteeringTests", dependencies: ["Steering", "DePass", "Bridges", "Tasks", "Support", "Text", "Model"]),
    ],
    swiftLanguageModes: [.v5]
)
