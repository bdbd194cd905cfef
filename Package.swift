// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "unetc",
    products: [
        .executable(name: "unetc", targets: ["unetc"]),
        .library(name: "UNetCompiler", targets: ["UNetCompiler"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CJSONC",
            pkgConfig: "json-c",
            providers: [.apt(["libjson-c-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .target(name: "UNetSpec", dependencies: ["CJSONC"]),
        .target(name: "UNetIR", dependencies: ["UNetSpec"]),
        .target(name: "UNetPasses", dependencies: ["UNetIR"]),
        .target(name: "UNetPlan", dependencies: ["UNetSpec", "UNetIR", "UNetPasses"]),
        // Code generated for AVX-512 (Swift's SIMD types only become FMA instructions with explicit
        // CPU flags); the runtime calls it only after checking the CPU.
        .target(name: "CPrefetch"),
        .target(name: "UNetKernelsAVX512", dependencies: ["CPrefetch"],
                swiftSettings: [.unsafeFlags(["-Ounchecked", "-target-cpu", "skylake-avx512"])]),
        // The same for AVX2 + FMA machines (no AVX-512): the GEMM microkernel and the blocked-layout
        // kernels sized for 16 registers, and the ISA-neutral sources of UNetKernelsAVX512 (Winograd
        // transforms, depthwise, activation, softmax, pooling loops) through symbolic links.
        .target(name: "UNetKernelsAVX2", dependencies: ["CPrefetch"],
                swiftSettings: [.unsafeFlags(["-Ounchecked", "-target-cpu", "haswell"])]),
        // Kernels are optimized in debug builds too: the test suite runs real graphs through them.
        .target(name: "UNetRuntime", dependencies: ["UNetSpec", "UNetIR", "UNetPasses", "UNetPlan", "UNetKernelsAVX512", "UNetKernelsAVX2", "CPrefetch", "CZlib"],
                swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug))]),
        .target(name: "UNetCompiler", dependencies: ["UNetSpec", "UNetIR", "UNetPasses", "UNetPlan", "UNetRuntime"]),
        .executableTarget(
            name: "unetc",
            dependencies: [
                "UNetCompiler", "UNetRuntime", "UNetSpec", "UNetIR", "UNetPasses", "UNetPlan",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "UNetSpecTests", dependencies: ["UNetSpec"]),
        .testTarget(name: "UNetIRTests", dependencies: ["UNetIR", "UNetCompiler"]),
        .testTarget(name: "CLITests", dependencies: ["UNetRuntime"]),
        .testTarget(name: "SamplingTests", dependencies: ["UNetCompiler", "UNetRuntime", "UNetIR"]),
        .testTarget(name: "UNetRuntimeTests", dependencies: ["UNetRuntime", "UNetIR", "UNetCompiler"]),
        .testTarget(name: "UNetPassesTests", dependencies: ["UNetPasses", "UNetRuntime", "UNetIR", "UNetCompiler"]),
    ],
    swiftLanguageModes: [.v6]
)
