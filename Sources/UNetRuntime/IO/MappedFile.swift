import Foundation

/// A read-only memory mapping of a whole file; unmapped when the last view of it goes away.
public final class MappedFile: @unchecked Sendable {
    public let bytes: UnsafeRawPointer
    public let count: Int

    public init(path: String) throws(RuntimeError) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw RuntimeError("cannot open '\(path)': \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { throw RuntimeError("'\(path)' is not a regular file") }
        count = Int(info.st_size)
        guard count > 0 else { throw RuntimeError("'\(path)' is empty") }
        // MAP_POPULATE faults the whole file in one go, far faster than page by page for a 100 MB plan.
        guard let p = mmap(nil, count, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0), p != MAP_FAILED else {
            throw RuntimeError("cannot map '\(path)': \(String(cString: strerror(errno)))")
        }
        bytes = UnsafeRawPointer(p)
    }

    /// A file's bytes as `Data`, memory-mapped by Foundation.
    public static func data(_ path: String) throws(RuntimeError) -> Data {
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw RuntimeError("cannot read '\(path)': \(error.localizedDescription)")
        }
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: bytes), count) }

    public func slice(_ range: Range<Int>) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: bytes + range.lowerBound, count: range.count))
    }
}
