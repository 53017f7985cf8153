import Foundation
import VirtioRing

// The guest-physical memory map from QEMU's `info mtree -f` (through QMP's
// human-monitor-command). The flat view of the "memory" address space lists each range once,
// after overlaps are resolved:
//
//   FlatView #1
//    AS "memory", root: system
//    AS "cpu-memory-0", root: system
//    Root memory region: system
//     0000000000000000-000000000009ffff (prio 0, ram): mem
//     00000000000c0000-00000000000cafff (prio 0, rom): mem @00000000000c0000
//     0000000000100000-000000000fffffff (prio 0, ram): mem @0000000000100000
//     0000000100000000-000000017fffffff (prio 0, ram): mem @0000000080000000
//
// `start-end` are inclusive; the name is the memory region (for guest RAM: the memory
// backend's id); `@offset` is the offset into it, absent when 0. The kind is `ram`, `rom`
// (a read-only window, e.g. the PAM-shadowed BIOS areas), `romd`, `ramd` (a RAM device) or
// `i/o`, with an `nv-` prefix for non-volatile ranges.

public struct FlatRange: Sendable, Equatable {
    public var start: UInt64
    /// Inclusive, as QEMU prints it.
    public var end: UInt64
    public var priority: Int
    public var kind: String
    public var name: String
    public var offset: UInt64

    public init(start: UInt64, end: UInt64, priority: Int = 0, kind: String, name: String, offset: UInt64 = 0) {
        self.start = start; self.end = end; self.priority = priority; self.kind = kind; self.name = name; self.offset = offset
    }

    public var size: UInt64 { end &- start &+ 1 }
    /// Plain guest RAM (writable, not a device): where a driver can put rings.
    public var isRAM: Bool { kind == "ram" || kind == "nv-ram" }
    /// RAM or a read-only window on RAM (the PAM-shadowed BIOS areas, where SeaBIOS keeps
    /// its request buffers): bytes of a memory backend when the name is one.
    public var mayHoldBuffers: Bool { isRAM || kind == "rom" || kind == "nv-rom" }
}

public enum MemoryTree {
    /// The flat ranges of the address space named `addressSpace` ("memory": what the CPUs
    /// and, without an IOMMU, devices see). Lines that do not parse are skipped.
    public static func flatView(_ text: String, addressSpace: String = "memory") -> [FlatRange] {
        var ranges: [FlatRange] = []
        var inWanted = false
        var seenWanted = false
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            let line = rawLine.trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("FlatView #") {
                if seenWanted { break }
                inWanted = false
                continue
            }
            if trimmed.hasPrefix("AS \"") {
                if trimmed.hasPrefix("AS \"\(addressSpace)\",") || trimmed == "AS \"\(addressSpace)\"" {
                    inWanted = true; seenWanted = true
                }
                continue
            }
            if inWanted, let r = parseRange(trimmed) { ranges.append(r) }
        }
        return ranges
    }

    /// One range line: `0000000000100000-000000000fffffff (prio 0, ram): mem @0000000000100000`.
    public static func parseRange(_ line: String) -> FlatRange? {
        guard let dash = line.firstIndex(of: "-"),
              let start = UInt64(line[..<dash], radix: 16),
              let open = line.range(of: " (prio "),
              let end = UInt64(line[line.index(after: dash)..<open.lowerBound], radix: 16),
              let close = line.range(of: "): ", range: open.upperBound..<line.endIndex) else { return nil }
        let attrs = line[open.upperBound..<close.lowerBound].split(separator: ",", maxSplits: 1)
        guard attrs.count == 2, let prio = Int(attrs[0].trimmingCharacters(in: .whitespaces)) else { return nil }
        let kind = attrs[1].trimmingCharacters(in: .whitespaces)
        var rest = String(line[close.upperBound...])
        var offset: UInt64 = 0
        if let at = rest.range(of: " @", options: .backwards),
           let o = UInt64(rest[at.upperBound...].split(separator: " ").first ?? "", radix: 16) {
            offset = o
            rest = String(rest[..<at.lowerBound])
        }
        // QEMU appends " [disabled]" or similar to some names; the region name is what is left.
        let name = rest.trimmingCharacters(in: .whitespaces)
        guard start <= end, !name.isEmpty else { return nil }
        return FlatRange(start: start, end: end, priority: prio, kind: kind, name: name, offset: offset)
    }

    /// The ranges backed by the named memory backends, as layout regions (file = the
    /// backend's file): RAM, and the read-only windows on it where the firmware keeps
    /// buffers (SeaBIOS's requests live in the shadowed BIOS area at 0xe0000). RAM devices,
    /// I/O, ROMs and RAM of other regions (vga.vram, pc.bios) are left out. Adjacent ranges
    /// that continue each other in both address spaces are merged.
    public static func regions(from ranges: [FlatRange], files: [String: String]) -> [DeviceLayout.Region] {
        var out: [DeviceLayout.Region] = []
        for r in ranges where r.mayHoldBuffers {
            guard let file = files[r.name] else { continue }
            if var last = out.last, last.file == file, last.gpa &+ last.size == r.start, last.offset &+ last.size == r.offset {
                last.size &+= r.size
                out[out.count - 1] = last
            } else {
                out.append(DeviceLayout.Region(file: file, offset: r.offset, gpa: r.start, size: r.size))
            }
        }
        return out
    }
}
