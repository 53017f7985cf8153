// What a device decoder tells the tap about its chains (DESIGN.md: the tap does not import a
// device decoder, it is handed a framer). The tap captures the protocol headers of every
// chain whole and applies the snap length (-s) only to the payload beyond them.

public protocol ChainFramer: Sendable {
    /// Bytes at the start of the device-readable part of a chain on `queue` that are
    /// protocol headers (virtio-scsi: request header and CDB).
    func readableHeaderLength(queue: UInt16) -> Int
    /// Bytes at the start of the device-writable part that are protocol headers
    /// (virtio-scsi: response header and sense buffer; an event).
    func writableHeaderLength(queue: UInt16) -> Int
}

/// For devices no decoder knows: no headers, the snap length applies to everything.
public struct OpaqueFramer: ChainFramer {
    public init() {}
    public func readableHeaderLength(queue: UInt16) -> Int { 0 }
    public func writableHeaderLength(queue: UInt16) -> Int { 0 }
}
