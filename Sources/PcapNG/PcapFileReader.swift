import CPcap
import VQRecord
import VQWire
#if canImport(Glibc)
import Glibc
#endif

// Reading captures back through libpcap (pcap or pcapng, nanosecond timestamps), as
// tcpdump does: libpcap 1.10 exposes neither interface ids nor block options, which is why
// a record carries its own queue and device (man/vqtap-pcapng.5).

public enum PcapReadError: Error, CustomStringConvertible, Equatable {
    /// The file could not be opened or is not a capture at all.
    case unreadable(path: String, reason: String)
    case wrongLinkType(path: String, linkType: Int32, name: String)
    /// A packet that is not a record this vqtap reads (unknown version, malformed bytes).
    case badRecord(path: String, frame: Int, error: DecodeError)
    /// The file ends inside a block, or libpcap found it corrupt: the records before it were read.
    case cutShort(path: String, frame: Int, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): "\(path): \(reason)"
        case let .wrongLinkType(path, linkType, name):
            "\(path): link type \(linkType) (\(name)) is not a vqtap capture (LINKTYPE_USER0, 147)"
        case let .badRecord(path, frame, error): "\(path): frame \(frame): \(error.description)"
        case let .cutShort(path, frame, reason): "\(path): frame \(frame): the file appears to have been cut short or is corrupt: \(reason)"
        }
    }

    /// A record error leaves the reader usable for the records after it.
    public var isRecoverable: Bool {
        if case .badRecord = self { return true }
        return false
    }
}

/// A capture file as a `RecordSource`. `path` "-" reads standard input.
public final class PcapFileReader: RecordSource {
    public let path: String
    private let handle: OpaquePointer
    /// The number of the last frame read, from 1 (as tshark counts).
    public private(set) var frame = 0
    public let linkType: Int32
    /// The stdio buffer of the file libpcap reads (freed after pcap_close closed the file).
    private let streamBuffer: UnsafeMutableRawPointer?

    /// A file's stream gets a 1 MiB buffer: libpcap reads a pcapng block in two freads,
    /// and with stdio's default 4 KiB buffer the read(2) calls cost more than the decoding.
    static let streamBufferSize = 1 << 20

    public init(path: String, requireLinkType: LinkType? = .user0) throws(PcapReadError) {
        self.path = path
        var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
        var buffer: UnsafeMutableRawPointer?
        var opened: OpaquePointer?
        if path != "-", let file = fopen(path, "rb") {
            let b = UnsafeMutableRawPointer.allocate(byteCount: Self.streamBufferSize, alignment: 16)
            setvbuf(file, b.assumingMemoryBound(to: CChar.self), _IOFBF, Self.streamBufferSize)
            opened = pcap_fopen_offline_with_tstamp_precision(file, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errbuf)
            if opened == nil {
                fclose(file)
                b.deallocate()
            } else {
                buffer = b
            }
        }
        // Standard input, or a file fopen could not open (libpcap's own message says why).
        if opened == nil {
            errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
            opened = pcap_open_offline_with_tstamp_precision(path, UInt32(PCAP_TSTAMP_PRECISION_NANO), &errbuf)
        }
        guard let h = opened else {
            throw .unreadable(path: path, reason: Self.text(errbuf))
        }
        handle = h
        streamBuffer = buffer
        linkType = pcap_datalink(h)
        if let want = requireLinkType, linkType != Int32(want.rawValue) {
            let name = pcap_datalink_val_to_name(linkType).map { String(decoding: UnsafeRawBufferPointer(start: $0, count: strlen($0)), as: UTF8.self) }
                ?? UInt16(exactly: linkType).flatMap(LinkType.init(rawValue:))?.name ?? "unknown"
            // deinit closes the handle: the instance is complete.
            throw .wrongLinkType(path: path, linkType: linkType, name: name)
        }
    }

    deinit {
        pcap_close(handle)
        streamBuffer?.deallocate()
    }

    private static func text(_ chars: [CChar]) -> String {
        String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The next packet's timestamp (ns) and bytes, handed to `body` without a copy; nil at the end.
    public func nextPacket<T>(_ body: (UInt64, UnsafeRawBufferPointer) throws(DecodeError) -> T) throws(PcapReadError) -> T? {
        var header: UnsafeMutablePointer<pcap_pkthdr>?
        var data: UnsafePointer<UInt8>?
        let rc = pcap_next_ex(handle, &header, &data)
        switch rc {
        case 1:
            frame += 1
            guard let header, let data else { return nil }
            let h = header.pointee
            let ns = UInt64(bitPattern: Int64(h.ts.tv_sec)) &* 1_000_000_000 &+ UInt64(bitPattern: Int64(h.ts.tv_usec))
            do {
                return try body(ns, UnsafeRawBufferPointer(start: data, count: Int(h.caplen)))
            } catch {
                throw .badRecord(path: path, frame: frame, error: error)
            }
        case PCAP_ERROR_BREAK:  // -2: end of file
            return nil
        default:
            let reason = pcap_geterr(handle).map { String(decoding: UnsafeRawBufferPointer(start: $0, count: strlen($0)), as: UTF8.self) } ?? "read error"
            throw .cutShort(path: path, frame: frame + 1, reason: reason)
        }
    }

    public func next() throws -> CaptureRecord? { try nextRecord() }

    /// Typed version of `next()`.
    public func nextRecord() throws(PcapReadError) -> CaptureRecord? {
        try nextPacket { ns, raw throws(DecodeError) in
            try CaptureRecord(decoding: Array(raw), timestampNs: ns)
        }
    }
}
