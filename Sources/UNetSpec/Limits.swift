/// Resource limits applied before anything is allocated; documented in graphs/README.md.
public enum Limits {
    public static let maxFileBytes = 16 << 20
    public static let maxNestingDepth = 64
    public static let maxRank = 6
    public static let maxDimension: Int64 = 1 << 24
    public static let maxElements: Int64 = 1 << 32
    public static let maxNodes = 100_000
    public static let maxBlockDepth = 32
    public static let maxPrintedDiagnostics = 20
}
