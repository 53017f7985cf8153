import CVQSys
import Foundation

// A file of guest RAM mapped read-only and shared (DESIGN.md rule 3): the tap sees the
// device's writes as they happen and can never write back. Reads of pages that vanish
// (the file was truncated, the VM exited) are absorbed by the C guard (CVQSys), which maps
// zeros there and counts the fault; `memoryWentAway` tells the poller to stop.

public struct TapError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let offset: UInt64
    public let length: Int
    public let base: UnsafeRawPointer
    private let fd: Int32
    private let guardSlot: Int32
    private let faultsAtMap: UInt64

    /// Maps `length` bytes of `path` from `offset`, read-only.
    public init(path: String, offset: UInt64 = 0, length: Int) throws(TapError) {
        guard vq_guard_install() == 0 else { throw TapError("cannot install the SIGBUS guard: \(String(cString: strerror(errno)))") }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TapError("\(path): cannot open: \(String(cString: strerror(errno)))") }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw TapError("\(path): cannot stat: \(String(cString: strerror(e)))")
        }
        let end = offset.addingReportingOverflow(UInt64(length))
        guard length > 0, !end.overflow, end.partialValue <= UInt64(st.st_size) else {
            close(fd)
            throw TapError("\(path): \(st.st_size) bytes, too small for \(length) bytes at offset \(offset)")
        }
        guard offset % UInt64(sysconf(Int32(_SC_PAGESIZE))) == 0 else {
            close(fd)
            throw TapError("\(path): offset \(offset) is not a multiple of the page size")
        }
        guard let p = mmap(nil, length, PROT_READ, MAP_SHARED, fd, off_t(offset)), p != MAP_FAILED else {
            let e = errno
            close(fd)
            throw TapError("\(path): cannot map \(length) bytes: \(String(cString: strerror(e)))")
        }
        let slot = vq_guard_register(p, length)
        guard slot >= 0 else {
            munmap(p, length)
            close(fd)
            throw TapError("\(path): too many mapped regions")
        }
        self.path = path
        self.offset = offset
        self.length = length
        self.base = UnsafeRawPointer(p)
        self.fd = fd
        self.guardSlot = slot
        self.faultsAtMap = vq_guard_faults()
    }

    deinit {
        vq_guard_unregister(guardSlot)
        munmap(UnsafeMutableRawPointer(mutating: base), length)
        close(fd)
    }

    /// True once a read of any guarded mapping faulted since this one was made: what was
    /// read may be zeros, and the memory is going or gone.
    public var memoryWentAway: Bool { vq_guard_faults() != faultsAtMap }

    /// The file's current size, or nil if it can no longer be examined.
    public var currentFileSize: UInt64? {
        var st = stat()
        return fstat(fd, &st) == 0 ? UInt64(st.st_size) : nil
    }

    /// True while the whole mapped range is still backed by the file.
    public var isIntact: Bool {
        guard let size = currentFileSize else { return false }
        return size >= offset + UInt64(length) && !memoryWentAway
    }
}
