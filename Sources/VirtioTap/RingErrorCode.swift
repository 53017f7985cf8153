import VirtioRing

// The `error` field of a capture record (man/vqtap-pcapng.5): which ring rule a malformed
// chain or completion broke, as a stable number, and the value it names (`error_detail`).
// Numbers are never reused or renumbered: a capture file outlives the program.
//
//   code  name                        detail
//   ----  --------------------------  -----------------------------------------
//      0  none
//      1  head-out-of-range           the head
//      2  descriptor-unreadable       guest address of the descriptor
//      3  next-out-of-range           the `next` value
//      4  loop                        index of the descriptor reached twice
//      5  buffer-outside-memory       guest address of the buffer
//      6  buffer-address-overflow     guest address of the buffer
//      7  readable-after-writable     index of the readable descriptor
//      8  chain-too-long              index of the first descriptor past the limit
//      9  indirect-with-next          index of the INDIRECT descriptor
//     10  nested-indirect             index of the table entry
//     11  indirect-table-empty        index of the INDIRECT descriptor
//     12  indirect-table-misaligned   the table length
//     13  indirect-table-too-large    entries in the table
//     14  indirect-table-outside-memory  guest address of the table
//     15  indirect-table-address-overflow guest address of the table
//     16  used-id-out-of-range        the used element's id (a completion)
//     17  used-length-exceeds         the used length (a completion; flag used-len-exceeds)
//
// A descriptor index in `detail` has bit 16 set when it is an entry of an indirect table.

public enum RingErrorCode: UInt16, Sendable, CaseIterable {
    case none = 0
    case headOutOfRange = 1
    case descriptorUnreadable = 2
    case nextOutOfRange = 3
    case loop = 4
    case bufferOutsideMemory = 5
    case bufferAddressOverflow = 6
    case readableAfterWritable = 7
    case chainTooLong = 8
    case indirectWithNext = 9
    case nestedIndirect = 10
    case indirectTableEmpty = 11
    case indirectTableMisaligned = 12
    case indirectTableTooLarge = 13
    case indirectTableOutsideMemory = 14
    case indirectTableAddressOverflow = 15
    case usedIDOutOfRange = 16
    case usedLengthExceeds = 17

    public var name: String {
        switch self {
        case .none: "none"
        case .headOutOfRange: "head-out-of-range"
        case .descriptorUnreadable: "descriptor-unreadable"
        case .nextOutOfRange: "next-out-of-range"
        case .loop: "loop"
        case .bufferOutsideMemory: "buffer-outside-memory"
        case .bufferAddressOverflow: "buffer-address-overflow"
        case .readableAfterWritable: "readable-after-writable"
        case .chainTooLong: "chain-too-long"
        case .indirectWithNext: "indirect-with-next"
        case .nestedIndirect: "nested-indirect"
        case .indirectTableEmpty: "indirect-table-empty"
        case .indirectTableMisaligned: "indirect-table-misaligned"
        case .indirectTableTooLarge: "indirect-table-too-large"
        case .indirectTableOutsideMemory: "indirect-table-outside-memory"
        case .indirectTableAddressOverflow: "indirect-table-address-overflow"
        case .usedIDOutOfRange: "used-id-out-of-range"
        case .usedLengthExceeds: "used-length-exceeds"
        }
    }

    /// The name of a raw code; unknown codes print as `unknown(0x1f)`.
    public static func name(of raw: UInt16) -> String {
        RingErrorCode(rawValue: raw)?.name ?? "unknown(0x\(String(raw, radix: 16)))"
    }

    /// Bit 16 of a descriptor index in `error_detail`: the descriptor is an indirect table entry.
    public static let indirectEntryBit: UInt64 = 1 << 16

    /// The code and detail of a walker error.
    public static func of(_ e: ChainError) -> (code: RingErrorCode, detail: UInt64) {
        func ref(_ r: DescriptorRef) -> UInt64 { UInt64(r.index) | (r.inIndirectTable ? indirectEntryBit : 0) }
        switch e {
        case let .headOutOfRange(h, _): return (.headOutOfRange, UInt64(h))
        case let .descriptorUnreadable(_, _, gpa): return (.descriptorUnreadable, gpa)
        case let .nextOutOfRange(_, _, next, _): return (.nextOutOfRange, UInt64(next))
        case let .loop(_, at): return (.loop, ref(at))
        case let .bufferOutsideMemory(_, _, addr, _): return (.bufferOutsideMemory, addr)
        case let .bufferAddressOverflow(_, _, addr, _): return (.bufferAddressOverflow, addr)
        case let .readableAfterWritable(_, at): return (.readableAfterWritable, ref(at))
        case let .chainTooLong(_, at, _): return (.chainTooLong, ref(at))
        case let .indirectWithNext(_, at): return (.indirectWithNext, ref(at))
        case let .nestedIndirect(_, at): return (.nestedIndirect, ref(at))
        case let .indirectTableEmpty(_, at): return (.indirectTableEmpty, ref(at))
        case let .indirectTableMisaligned(_, _, len): return (.indirectTableMisaligned, UInt64(len))
        case let .indirectTableTooLarge(_, _, entries, _): return (.indirectTableTooLarge, UInt64(entries))
        case let .indirectTableOutsideMemory(_, _, addr, _): return (.indirectTableOutsideMemory, addr)
        case let .indirectTableAddressOverflow(_, _, addr, _): return (.indirectTableAddressOverflow, addr)
        }
    }

    /// Errors that a freed and scribbled chain produces: when the chain's head was already
    /// reposted, they mean "recycled" (torn), not "malformed".
    public static func mayComeFromRecycling(_ e: ChainError) -> Bool {
        switch e {
        case .headOutOfRange: false
        default: true
        }
    }
}
