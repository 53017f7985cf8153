#if canImport(Glibc)
import Glibc
#endif
import Foundation

// The ground truth (`--truth FILE`): JSON lines, one per request, TMF, AN message and event,
// nested by the decoders' dotted field names (`virtio_scsi.cdb.opcode` is
// `{"virtio_scsi": {"cdb": {"opcode": ...}}}`), ids as hex strings, codes with their names.
// The last line is `{"summary": {...}}`. Lines are assembled as bytes: a truth run still
// reaches hundreds of thousands of lines a second.

/// A JSON object written key by key into bytes. Keys and names are our own ASCII constants;
/// `string` escapes anything else.
struct JSONLine {
    var bytes: [UInt8] = []

    init() { bytes.reserveCapacity(512) }

    @inline(__always) mutating func raw(_ s: StaticString) {
        s.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    @inline(__always) mutating func comma() {
        if let last = bytes.last, last != UInt8(ascii: "{") && last != UInt8(ascii: "[") { bytes.append(UInt8(ascii: ",")) }
    }

    mutating func key(_ k: StaticString) {
        comma()
        bytes.append(UInt8(ascii: "\""))
        raw(k)
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    mutating func open(_ k: StaticString) { key(k); bytes.append(UInt8(ascii: "{")) }
    mutating func openObject() { comma(); bytes.append(UInt8(ascii: "{")) }
    mutating func close() { bytes.append(UInt8(ascii: "}")) }

    mutating func number(_ v: UInt64) {
        if v == 0 { bytes.append(UInt8(ascii: "0")); return }
        var tmp: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                  UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        var x = v
        withUnsafeMutableBytes(of: &tmp) { b in
            while x > 0 { b[n] = UInt8(ascii: "0") + UInt8(x % 10); x /= 10; n += 1 }
            for i in stride(from: n - 1, through: 0, by: -1) { bytes.append(b[i]) }
        }
    }

    mutating func field(_ k: StaticString, _ v: UInt64) { key(k); number(v) }
    mutating func field(_ k: StaticString, _ v: Int) {
        key(k)
        if v < 0 { bytes.append(UInt8(ascii: "-")); number(UInt64(-v)) } else { number(UInt64(v)) }
    }
    mutating func field(_ k: StaticString, _ v: Double) {
        key(k)
        let s = v.isFinite ? String(format: "%.1f", v) : "0"
        bytes.append(contentsOf: Array(s.utf8))
    }
    mutating func field(_ k: StaticString, _ v: Bool) { key(k); if v { raw("true") } else { raw("false") } }
    mutating func field(_ k: StaticString, _ s: String) { key(k); string(s) }

    mutating func hexField(_ k: StaticString, _ v: UInt64) {
        key(k)
        bytes.append(UInt8(ascii: "\""))
        raw("0x")
        let digits: StaticString = "0123456789abcdef"
        var started = false
        digits.withUTF8Buffer { d in
            for shift in stride(from: 60, through: 0, by: -4) {
                let nib = Int((v >> UInt64(shift)) & 0xf)
                if nib != 0 || started || shift == 0 { bytes.append(d[nib]); started = true }
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// A code and its name: `"k": v, "k_name": "name"`.
    mutating func code(_ k: StaticString, _ nameKey: StaticString, _ v: UInt64, _ name: String) {
        field(k, v)
        field(nameKey, name)
    }

    mutating func string(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        for u in s.utf8 {
            switch u {
            case UInt8(ascii: "\""): bytes.append(UInt8(ascii: "\\")); bytes.append(u)
            case UInt8(ascii: "\\"): bytes.append(UInt8(ascii: "\\")); bytes.append(u)
            case 0..<0x20:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: Array("\\u00".utf8)); bytes.append(hex[Int(u >> 4)]); bytes.append(hex[Int(u & 0xf)])
            default: bytes.append(u)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func rawJSON(_ s: String) { comma(); bytes.append(contentsOf: Array(s.utf8)) }

    mutating func lun(_ raw: UInt64) {
        open("lun")
        field("target", Int((raw >> 8) & 0xff))
        field("lun", Int(((raw >> 16) & 0x3f) << 8 | ((raw >> 24) & 0xff)))
        close()
    }
}

/// The truth file: lines from the driver (requests, TMFs, AN, events it received) and from the
/// device (rejected chains, dropped events), behind one lock.
public final class TruthSink: @unchecked Sendable {
    let file: UnsafeMutablePointer<FILE>
    let lock = NSLock()
    let monoBase: UInt64
    let wallBase: UInt64
    public private(set) var lines: UInt64 = 0

    public init(path: String) throws(SimError) {
        guard let f = fopen(path, "w") else { throw SimError("--truth \(path): cannot create: \(String(cString: strerror(errno)))") }
        file = f
        setvbuf(f, nil, _IOFBF, 1 << 20)
        monoBase = monotonicNs()
        wallBase = wallClockNs()
    }

    deinit { fclose(file) }

    @inline(__always) func wall(_ mono: UInt64) -> UInt64 { wallBase &+ (mono &- monoBase) }

    func write(_ line: JSONLine) {
        lock.lock()
        line.bytes.withUnsafeBytes { b in _ = fwrite(b.baseAddress, 1, b.count, file) }
        fputc(0x0a, file)
        lines += 1
        lock.unlock()
    }

    func flush() {
        lock.lock(); fflush(file); lock.unlock()
    }

    func deviceLine(kind: String, queue: Int, head: Int, extra: String, timeNs: UInt64) {
        var j = JSONLine()
        j.openObject()
        j.field("kind", kind)
        j.field("queue", queue)
        j.field("head", head)
        j.rawJSON(extra)
        j.field("time_ns", wall(timeNs))
        j.field("used_ns", timeNs)
        j.close()
        write(j)
    }

    func eventLine(head: Int?, event: UInt32, lunRaw: UInt64, reason: UInt32, outcome: String, fault: SimFault?, usedNs: UInt64) {
        var j = JSONLine()
        j.openObject()
        j.open("virtio_scsi")
        j.open("event")
        j.code("type", "type_name", UInt64(event & 0x7fff_ffff), VSControl.eventName(event & 0x7fff_ffff))
        j.field("events_missed", event & VSControl.eventsMissed != 0)
        j.code("reason", "reason_name", UInt64(reason), Self.reasonName(event: event, reason: reason))
        if event & 0x7fff_ffff == VSControl.eventParamChange {
            j.field("asc", UInt64(reason & 0xff))
            j.field("ascq", UInt64((reason >> 8) & 0xff))
        }
        j.close()
        j.lun(lunRaw)
        j.close()
        j.field("queue", 1)
        if let head { j.field("head", head) }
        j.field("kind", "event")
        j.field("outcome", outcome)
        j.field("time_ns", wall(usedNs))
        j.field("used_ns", usedNs)
        if let fault { j.field("fault", fault.rawValue) }
        j.close()
        write(j)
    }

    static func reasonName(event: UInt32, reason: UInt32) -> String {
        switch event & 0x7fff_ffff {
        case VSControl.eventTransportReset: return VSControl.resetReasonName(reason)
        case VSControl.eventParamChange:
            return reason == 0x092a ? "CAPACITY_DATA_HAS_CHANGED" : "asc 0x\(String(reason & 0xff, radix: 16)) ascq 0x\(String(reason >> 8, radix: 16))"
        default: return reason == 0 ? "none" : "unknown(0x\(String(reason, radix: 16)))"
        }
    }
}
