import Foundation

/// Which microkernels this CPU can run, read once from /proc/cpuinfo.
///
/// `UNETC_ISA=portable` forces the portable kernels and `UNETC_ISA=avx2` the AVX2 ones on an
/// AVX-512 machine (to test them, or to compare); neither enables what the CPU lacks.
public enum CPUFeatures {
    public enum ISA: String, Sendable { case avx512, avx2, portable }

    /// The instruction-set extensions LLVM's `skylake-avx512` target may use.
    static let avx512Flags: Set<String> = ["avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl", "avx2", "fma", "bmi2"]
    /// Those of its `haswell` target.
    static let avx2Flags: Set<String> = ["avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "movbe", "popcnt"]

    /// The tag plans carry: the architecture and the kernels (and so the weight panels) they were prepared for.
    public static var planTag: String {
        #if arch(x86_64)
        return "x86_64/" + isa.rawValue
        #elseif arch(arm64)
        return "arm64/" + isa.rawValue
        #else
        return "unknown/" + isa.rawValue
        #endif
    }

    /// Whether the CPU runs 512-bit operations as two 256-bit halves (AMD Zen 4: family 25 with
    /// AVX-512), where a 16x16 register transpose's 64 two-source permutes cost twice as much: the
    /// blocked head then transposes by 8x8 quarters (0.41-0.52 ms against 1.8-2.1 ms on MobileUNet's
    /// head there), and whole tiles elsewhere (1.0-1.2 ms against 1.4-1.6 ms on a Sapphire Rapids class Xeon).
    public static let halfWidthAVX512: Bool = {
        #if arch(x86_64)
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return false }
        let lines = text.split(separator: "\n").prefix(30)
        func field(_ name: String) -> String? {
            lines.first(where: { $0.hasPrefix(name) }).flatMap { $0.split(separator: ":", maxSplits: 1).last }.map { $0.trimmingCharacters(in: .whitespaces) }
        }
        return field("vendor_id") == "AuthenticAMD" && field("cpu family") == "25"
        #else
        return false
        #endif
    }()

    public static let isa: ISA = {
        let requested = ProcessInfo.processInfo.environment["UNETC_ISA"]
        if requested == "portable" { return .portable }
        #if arch(x86_64)
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return .portable }
        let flags = Set(line.split(separator: " ").map(String.init))
        if avx512Flags.isSubset(of: flags) && requested != "avx2" { return .avx512 }
        return avx2Flags.isSubset(of: flags) ? .avx2 : .portable
        #else
        return .portable
        #endif
    }()
}
