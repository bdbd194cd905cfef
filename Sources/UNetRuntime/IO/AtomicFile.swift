import Foundation

/// Writes a file through a temporary file in the same directory and a rename, so readers see the
/// old file or the new one, never a half-written one, even when the process is killed mid-write.
///
/// The temporary file is `.NAME.PID.RANDOM.tmp` beside the target; a process killed before the
/// rename leaves it behind (nothing else can remove it), never a partial target.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws(RuntimeError) {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw RuntimeError("cannot write '\(path)': directory '\(directory.path)' does not exist")
        }
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp").path
        func failure(_ what: String) -> RuntimeError { RuntimeError("cannot write '\(path)': \(what): \(String(cString: strerror(errno)))") }
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure("cannot create a temporary file in '\(directory.path)'") }
        var error: RuntimeError?
        data.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count, let base = raw.baseAddress {
                let n = Foundation.write(fd, base + done, raw.count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { error = failure("write failed"); return }
                done += n
            }
        }
        // The data must be on disk before the rename makes it the file, or a power cut could leave an empty one.
        if error == nil && fsync(fd) != 0 { error = failure("fsync failed") }
        close(fd)
        if error == nil && rename(temporary, path) != 0 { error = failure("rename failed") }
        if let error {
            unlink(temporary)
            throw error
        }
    }
}
