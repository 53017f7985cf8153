import VQWire

// PCAP Next Generation blocks (IETF draft-ietf-opsawg-pcapng), little-endian, as tshark 4.0
// and libpcap 1.10 read them. Every block is built whole in memory and written with one
// call, so that a file cut by a kill or a full disk ends at a block boundary or inside the
// last block only (a reader then keeps everything before it).
//
//   0               4               8
//   +---------------+---------------+----------------------------+---------------+
//   |  block type   | total length  |  body, options (padded 4)  | total length  |
//   +---------------+---------------+----------------------------+---------------+
//
// Option: u16 code, u16 length, value padded to 4; the list ends with code 0 (opt_endofopt).
//
//   SHB 0x0a0d0d0a: u32 byte-order magic 0x1a2b3c4d, u16 major 1, u16 minor 0,
//                   i64 section length (-1: not given); shb_hardware 2, shb_os 3, shb_userappl 4
//   IDB 1:          u16 link type, u16 reserved, u32 snaplen; if_name 2, if_description 3,
//                   if_tsresol 9 (one byte: 9 = nanoseconds)
//   EPB 6:          u32 interface id, u32 timestamp high, u32 timestamp low, u32 captured
//                   length, u32 original length, data padded to 4; epb_flags 2 (bits 0-1:
//                   1 inbound, 2 outbound), opt_comment 1
//   ISB 5:          u32 interface id, u32 timestamp high, u32 timestamp low; isb_starttime 2,
//                   isb_endtime 3 (u64 as high, low), isb_ifrecv 4, isb_ifdrop 5 (u64)

public enum LinkType: UInt16, Sendable {
    /// Private use: vqtap capture records (man/vqtap-pcapng.5).
    case user0 = 147
    /// Exported PDUs tagged with the name of the dissector that decodes them.
    case wiresharkUpperPDU = 252

    public var name: String { self == .user0 ? "USER0" : "WIRESHARK_UPPER_PDU" }
}

/// The direction of an enhanced packet block (`frame.p2p_dir` in Wireshark).
public enum PacketDirection: UInt32, Sendable {
    case unknown = 0
    /// Device to driver (a used chain).
    case inbound = 1
    /// Driver to device (an available chain).
    case outbound = 2
}

public enum PcapNGBlocks {
    public static let sectionHeaderType: UInt32 = 0x0A0D_0D0A
    public static let interfaceDescriptionType: UInt32 = 1
    public static let interfaceStatisticsType: UInt32 = 5
    public static let enhancedPacketType: UInt32 = 6
    public static let byteOrderMagic: UInt32 = 0x1A2B_3C4D

    /// One option, padded; empty values are left out by the callers.
    static func option(_ code: UInt16, _ value: [UInt8], into w: inout ByteWriter) {
        let n = min(value.count, Int(UInt16.max) - 3)
        w.writeLE16(code)
        w.writeLE16(UInt16(n))
        w.writeBytes(value.prefix(n))
        w.writeZeros(padding(n))
    }

    static func option(_ code: UInt16, _ text: String, into w: inout ByteWriter) {
        if !text.isEmpty { option(code, Array(text.utf8), into: &w) }
    }

    static func option64(_ code: UInt16, _ v: UInt64, into w: inout ByteWriter) {
        var b = ByteWriter(capacity: 8)
        b.writeLE64(v)
        option(code, b.bytes, into: &w)
    }

    /// Timestamps with if_tsresol 9 are split high word first.
    static func optionTimestamp(_ code: UInt16, _ ns: UInt64, into w: inout ByteWriter) {
        var b = ByteWriter(capacity: 8)
        b.writeLE32(UInt32(truncatingIfNeeded: ns >> 32))
        b.writeLE32(UInt32(truncatingIfNeeded: ns))
        option(code, b.bytes, into: &w)
    }

    @inline(__always) public static func padding(_ n: Int) -> Int { (4 - n % 4) % 4 }

    /// Wraps a body (fixed part and options, already padded) into a block.
    static func block(_ type: UInt32, _ body: [UInt8]) -> [UInt8] {
        let total = UInt32(12 + body.count)
        var w = ByteWriter(capacity: body.count + 12)
        w.writeLE32(type)
        w.writeLE32(total)
        w.writeBytes(body)
        w.writeLE32(total)
        return w.bytes
    }

    public static func sectionHeader(hardware: String, os: String, userApplication: String) -> [UInt8] {
        var w = ByteWriter(capacity: 128)
        w.writeLE32(byteOrderMagic)
        w.writeLE16(1)
        w.writeLE16(0)
        w.writeLE64(UInt64.max)  // section length not given (-1)
        option(2, hardware, into: &w)
        option(3, os, into: &w)
        option(4, userApplication, into: &w)
        w.writeLE32(0)  // opt_endofopt
        return block(sectionHeaderType, w.bytes)
    }

    public static func interfaceDescription(linkType: LinkType, snaplen: UInt32, name: String, description: String) -> [UInt8] {
        var w = ByteWriter(capacity: 128)
        w.writeLE16(linkType.rawValue)
        w.writeLE16(0)
        w.writeLE32(snaplen)
        option(2, name, into: &w)
        option(3, description, into: &w)
        option(9, [9], into: &w)  // if_tsresol: 10^-9 s
        w.writeLE32(0)
        return block(interfaceDescriptionType, w.bytes)
    }

    public static func interfaceStatistics(interface: UInt32, timestampNs: UInt64, startNs: UInt64, endNs: UInt64,
                                           received: UInt64, dropped: UInt64) -> [UInt8] {
        var w = ByteWriter(capacity: 80)
        w.writeLE32(interface)
        w.writeLE32(UInt32(truncatingIfNeeded: timestampNs >> 32))
        w.writeLE32(UInt32(truncatingIfNeeded: timestampNs))
        optionTimestamp(2, startNs, into: &w)
        optionTimestamp(3, endNs, into: &w)
        option64(4, received, into: &w)
        option64(5, dropped, into: &w)
        w.writeLE32(0)
        return block(interfaceStatisticsType, w.bytes)
    }

    /// The size of an enhanced packet block holding `dataLength` bytes.
    public static func enhancedPacketLength(dataLength: Int, direction: PacketDirection, comment: [UInt8]) -> Int {
        var n = 32 + dataLength + padding(dataLength)
        if direction != .unknown || !comment.isEmpty { n += 4 }  // opt_endofopt
        if direction != .unknown { n += 8 }
        if !comment.isEmpty { n += 4 + comment.count + padding(comment.count) }
        return n
    }

    /// Appends an enhanced packet block whose data `writeData` appends (exactly `dataLength`
    /// bytes), so that payloads are not copied twice.
    @inline(__always)
    public static func appendEnhancedPacket(into w: BlockBuffer, interface: UInt32, timestampNs: UInt64,
                                            dataLength: Int, originalLength: Int, direction: PacketDirection,
                                            comment: [UInt8] = [], writeData: (BlockBuffer) -> Void) {
        let total = UInt32(enhancedPacketLength(dataLength: dataLength, direction: direction, comment: comment))
        w.reserve(Int(total))
        w.uncheckedLE32(enhancedPacketType)
        w.uncheckedLE32(total)
        w.uncheckedLE32(interface)
        w.uncheckedLE32(UInt32(truncatingIfNeeded: timestampNs >> 32))
        w.uncheckedLE32(UInt32(truncatingIfNeeded: timestampNs))
        w.uncheckedLE32(UInt32(dataLength))
        w.uncheckedLE32(UInt32(clamping: max(originalLength, dataLength)))
        let before = w.count
        writeData(w)
        precondition(w.count - before == dataLength, "enhanced packet data length")
        w.zeros(padding(dataLength))
        if direction != .unknown || !comment.isEmpty {
            if direction != .unknown {
                w.reserve(8)
                w.uncheckedLE32(0x0004_0002)  // epb_flags, length 4
                w.uncheckedLE32(direction.rawValue)
            }
            if !comment.isEmpty {
                let n = min(comment.count, Int(UInt16.max) - 3)
                w.le16(1)
                w.le16(UInt16(n))
                w.bytes(comment.prefix(n))
                w.zeros(padding(n))
            }
            w.le32(0)
        }
        w.le32(total)
    }
}
