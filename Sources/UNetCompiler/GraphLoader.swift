import Foundation
import UNetIR
import UNetSpec

/// The library entry point: read a graph file and turn it into a verified IR graph.
public enum GraphLoader {
    /// Reads, parses, decodes and lowers the graph file at `path`; every problem comes back as a located diagnostic.
    /// `shapes` replaces declared input shapes (`unetc compile --shape x=1x3x512x512`).
    public static func load(path: String, shapes: [String: [Int]] = [:]) -> Result<Graph, DiagnosticList> {
        switch readFile(path) {
        case .failure(let d): return .failure(DiagnosticList([d]))
        case .success(let bytes): return load(bytes: bytes, file: path, shapes: shapes)
        }
    }

    /// Lowers graph text already in memory; `file` is used in messages only.
    public static func load(bytes: [UInt8], file: String, shapes: [String: [Int]] = [:]) -> Result<Graph, DiagnosticList> {
        switch SpecDecoder.decode(bytes: bytes, file: file) {
        case .failure(let list): return .failure(list)
        case .success(var spec):
            for (name, shape) in shapes {
                guard let k = spec.inputs.firstIndex(where: { $0.name == name }) else {
                    return .failure(DiagnosticList([Diagnostic(file: file, message: "--shape names unknown input '\(name)'",
                                                               hint: NearestName.hint(name, in: spec.inputs.map(\.name)))]))
                }
                guard shape.count == spec.inputs[k].shape.count, shape.allSatisfy({ $0 >= 1 && $0 <= Int(Limits.maxDimension) }) else {
                    return .failure(DiagnosticList([Diagnostic(file: file, message: "--shape for '\(name)' must have rank \(spec.inputs[k].shape.count) and dimensions in 1...\(Limits.maxDimension)")]))
                }
                spec.inputs[k].shape = shape.map { Int64($0) }
            }
            return Lowering.lower(spec)
        }
    }

    /// Reads a file after checking it is a regular file within `Limits.maxFileBytes`, so a device or a huge file is refused before reading.
    public static func readFile(_ path: String, limit: Int = Limits.maxFileBytes) -> Result<[UInt8], Diagnostic> {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            return .failure(Diagnostic(file: path, message: "no such file"))
        }
        if isDirectory.boolValue { return .failure(Diagnostic(file: path, message: "is a directory, not a graph file")) }
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              let type = attributes[.type] as? FileAttributeType, type == .typeRegular,
              let size = attributes[.size] as? NSNumber else {
            return .failure(Diagnostic(file: path, message: "not a regular file"))
        }
        if size.intValue > limit {
            return .failure(Diagnostic(file: path, message: "file is \(size.intValue) bytes, over the limit of \(limit) bytes"))
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            return .failure(Diagnostic(file: path, message: "cannot open the file for reading"))
        }
        defer { try? handle.close() }
        do {
            let data = try handle.read(upToCount: limit + 1) ?? Data()
            if data.count > limit {
                return .failure(Diagnostic(file: path, message: "file is over the limit of \(limit) bytes"))
            }
            return .success([UInt8](data))
        } catch {
            return .failure(Diagnostic(file: path, message: "cannot read the file: \(error.localizedDescription)"))
        }
    }
}
