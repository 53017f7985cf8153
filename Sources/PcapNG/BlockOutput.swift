#if canImport(Glibc)
import Glibc
#endif

/// Why writing a capture stopped.
public enum PcapNGWriteError: Error, CustomStringConvertible, Equatable {
    case cannotCreate(path: String, reason: String)
    /// ENOSPC or EDQUOT: the file holds every block written before the one that did not fit.
    case diskFull(path: String)
    case writeFailed(path: String, reason: String)
    case invalidOptions(String)

    public var description: String {
        switch self {
        case let .cannotCreate(path, reason): "\(path): cannot create: \(reason)"
        case let .diskFull(path): "\(path): the disk is full; the file ends at the last complete block"
        case let .writeFailed(path, reason): "\(path): write failed: \(reason)"
        case let .invalidOptions(text): text
        }
    }
}

/// Where blocks go: one file (created mode 0600: captures hold guest data) or standard
/// output. Blocks are gathered and written in large pieces made of whole blocks only.
struct BlockOutput {
    let path: String
    private let fd: Int32
    private let ownsDescriptor: Bool
    /// Bytes written to the descriptor so far.
    private(set) var written: UInt64 = 0

    static func errnoText(_ e: Int32) -> String {
        if let s = strerror(e) { return String(cString: s) }
        return "errno \(e)"
    }

    init(path: String) throws(PcapNGWriteError) {
        self.path = path
        if path == "-" {
            fd = 1
            ownsDescriptor = false
            return
        }
        let d = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard d >= 0 else { throw .cannotCreate(path: path, reason: Self.errnoText(errno)) }
        // O_CREAT's mode applies only to new files: an old file keeps its mode otherwise.
        _ = fchmod(d, 0o600)
        fd = d
        ownsDescriptor = true
    }

    /// Writes every byte or throws; a short write on a full disk leaves a cut last block.
    mutating func write(_ raw: UnsafeRawBufferPointer) throws(PcapNGWriteError) {
        var failure: Int32 = 0
        let n: Int = {
            guard let base = raw.baseAddress else { return 0 }
            var offset = 0
            while offset < raw.count {
                let k = Glibc.write(fd, base + offset, raw.count - offset)
                if k < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    break
                }
                if k == 0 { failure = ENOSPC; break }
                offset += k
            }
            return offset
        }()
        written += UInt64(n)
        if failure == ENOSPC || failure == EDQUOT { throw .diskFull(path: path) }
        if failure != 0 { throw .writeFailed(path: path, reason: Self.errnoText(failure)) }
    }

    func close() {
        if ownsDescriptor { _ = Glibc.close(fd) }
    }
}
