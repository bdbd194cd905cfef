import Foundation

/// Which microkernels this CPU can run, read once from /proc/cpuinfo.
///
/// `UNETC_ISA=portable` forces the portable kernels (to test them, or to compare).
public enum CPUFeatures {
    public enum ISA: String, Sendable { case avx512, portable }

    /// The instruction-set extensions LLVM's `skylake-avx512` target may use.
    static let avx512Flags: Set<String> = ["avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl", "avx2", "fma", "bmi2"]

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

    public static let isa: ISA = {
        if ProcessInfo.processInfo.environment["UNETC_ISA"] == "portable" { return .portable }
        #if arch(x86_64)
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return .portable }
        let flags = Set(line.split(separator: " ").map(String.init))
        return avx512Flags.isSubset(of: flags) ? .avx512 : .portable
        #else
        return .portable
        #endif
    }()
}
