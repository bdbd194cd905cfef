import Foundation

/// Writes a file through a temporary file in the same directory and a rename, so readers see the
/// old file or the new one, never a half-written one.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws(RuntimeError) {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw RuntimeError("cannot write '\(path)': directory '\(directory.path)' does not exist")
        }
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp")
        guard FileManager.default.createFile(atPath: temporary.path, contents: data) else {
            throw RuntimeError("cannot write '\(path)': the directory is not writable")
        }
        if rename(temporary.path, url.path) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(temporary.path)
            throw RuntimeError("cannot write '\(path)': \(reason)")
        }
    }
}
