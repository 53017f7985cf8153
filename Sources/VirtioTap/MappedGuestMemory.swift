import CVQSys
import VirtioRing

// Guest RAM as the tap sees it (DESIGN.md rule 3): every region of a layout file mapped
// PROT_READ, MAP_SHARED through MappedFile, addressed by guest-physical address through
// MappedRegions. Nothing here can write guest memory. A region whose file shrinks reads as
// zeros (the SIGBUS guard of CVQSys) and `memoryWentAway` turns true: the poller checks it
// after every batch and throws the batch away.

public final class MappedGuestMemory: GuestMemory, @unchecked Sendable {
    public let files: [MappedFile]
    public let mapped: MappedRegions

    /// Maps every region of `layout`. Regions of one file are mapped separately (each at its
    /// own offset, which must be a multiple of the page size).
    /// Mappings of `reusing` that `regions` still need are kept, not mapped again.
    public init(regions: [DeviceLayout.Region], reusing old: [MappedFile] = []) throws(TapError) {
        var files: [MappedFile] = []
        var ranges: [MappedRegions.Region] = []
        for r in regions {
            guard r.size <= UInt64(Int.max) else { throw TapError("\(r.file): region of \(r.size) bytes is too large to map") }
            let kept = old.first { $0.path == r.file && $0.offset == r.offset && $0.length == Int(r.size) && $0.isIntact }
            let f: MappedFile
            if let kept { f = kept } else { f = try MappedFile(path: r.file, offset: r.offset, length: Int(r.size)) }
            files.append(f)
            ranges.append(.init(gpa: r.gpa, size: r.size, base: f.base))
        }
        do { mapped = try MappedRegions(ranges) } catch { throw TapError("guest memory: \(error)") }
        self.files = files
    }

    public convenience init(layout: DeviceLayout) throws(TapError) {
        try self.init(regions: layout.regions)
    }

    /// True once a read of a mapped page faulted (a file was truncated, the VM exited): what
    /// was read since may be zeros.
    public var memoryWentAway: Bool { files.contains { $0.memoryWentAway } }

    /// True while every file still backs its whole region and nothing faulted.
    public var isIntact: Bool { files.allSatisfy { $0.isIntact } }


    public func contains(gpa: UInt64, count: Int) -> Bool { mapped.contains(gpa: gpa, count: count) }

    @inline(__always)
    public func translate(gpa: UInt64, count: Int) -> UnsafeRawPointer? { mapped.translate(gpa: gpa, count: count) }

    public func read(_ gpa: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(RingError) {
        try checkRange(gpa: gpa, count: buffer.count)
        guard let p = mapped.translate(gpa: gpa, count: buffer.count), let dst = buffer.baseAddress else { return }
        dst.copyMemory(from: p, byteCount: buffer.count)
    }

    @inline(__always)
    public func loadAcquire16(_ gpa: UInt64) throws(RingError) -> UInt16 {
        // Ring indices are 2-byte aligned (SplitQueueLayout checks the areas), so the atomic
        // load is a plain aligned load with acquire ordering.
        guard gpa & 1 == 0, let p = mapped.translate(gpa: gpa, count: 2) else {
            return try readLE16(gpa)
        }
        return UInt16(littleEndian: vq_load_acquire_u16(p))
    }
}
