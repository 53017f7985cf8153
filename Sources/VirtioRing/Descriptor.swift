import VQWire

// virtio 1.x, 2.7.5 "The Virtqueue Descriptor Table" (split virtqueue); virtio-facts.md.
//
//   0      8      12     14     16
//   +------+------+------+------+
//   | addr | len  |flags | next |      struct virtq_desc, little-endian, 16 bytes
//   +------+------+------+------+

public struct DescriptorFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// The chain continues at `next`.
    public static let next = DescriptorFlags(rawValue: 1)
    /// The device writes this buffer.
    public static let write = DescriptorFlags(rawValue: 2)
    /// The buffer is a table of descriptors.
    public static let indirect = DescriptorFlags(rawValue: 4)

    public var names: [String] {
        Naming.flagNames(UInt64(rawValue), [(1, "NEXT"), (2, "WRITE"), (4, "INDIRECT")])
    }
}

public struct Descriptor: Sendable, Hashable {
    public static let size = 16

    public var addr: UInt64
    public var len: UInt32
    public var flags: DescriptorFlags
    public var next: UInt16

    public init(addr: UInt64, len: UInt32, flags: DescriptorFlags = [], next: UInt16 = 0) {
        self.addr = addr
        self.len = len
        self.flags = flags
        self.next = next
    }

    public init(decoding r: inout ByteReader) throws(DecodeError) {
        addr = try r.readLE64("virtio.desc.addr")
        len = try r.readLE32("virtio.desc.len")
        flags = DescriptorFlags(rawValue: try r.readLE16("virtio.desc.flags"))
        next = try r.readLE16("virtio.desc.next")
    }

    public func encode(into w: inout ByteWriter) {
        w.writeLE64(addr)
        w.writeLE32(len)
        w.writeLE16(flags.rawValue)
        w.writeLE16(next)
    }
}
