import VQAnalysis
import VQRecord
import VQWire
import VirtioSCSI

// The one-line text of RecordFormatter.text (verbosity 0) for a record decoded the cheap
// way (RecordDecoder.decodeFast), written straight into a reused byte buffer. Byte for
// byte the same line: every name comes from the same definitions (tables built once from
// them), every number is printed as they print it. The golden tests of `vqtap read` cover
// both paths.

public struct FastLineFormatter {
    private var queueNames: [[UInt8]] = []
    private var deviceNameText = ""
    private var deviceNameBytes: [UInt8] = []

    public init() {}

    /// Appends the line (no newline) of a record `decoder.decodeFast` just decoded as `fast`.
    public mutating func append(_ v: RecordView, _ fast: FastDecode, decoder: RecordDecoder, to out: inout [UInt8]) {
        Self.clock(v.timestampNs, &out)
        out.append(0x20)
        let name = decoder.deviceName
        if name != deviceNameText {
            deviceNameText = name
            deviceNameBytes = Array(name.utf8)
        }
        out.append(contentsOf: deviceNameBytes)
        out.append(0x20)
        let q = Int(v.queue)
        if q >= queueNames.count {
            queueNames += (queueNames.count...q).map { Array(VirtioSCSIQueueRole(queue: UInt16($0)).name.utf8) }
        }
        out.append(contentsOf: queueNames[q])
        switch fast {
        case .request:
            out.append(contentsOf: Self.requestStart)
            Self.requestBody(decoder.command, &out)
        case let .completion(paired):
            out.append(contentsOf: Self.responseStart)
            Self.responseBody(decoder.response, &out)
            if paired {
                out.append(0x20)
                out.append(0x28)  // "("
                Self.requestBody(decoder.command, &out)
                out.append(0x2c)  // ","
                out.append(0x20)
                out.append(contentsOf: RecordFormatter.latency(v.latencyNs).utf8)
                out.append(0x29)  // ")"
            }
        case .full:
            return
        }
        // decodeFast leaves records with other flags (malformed, unknown bits) to the full decode.
        out.append(contentsOf: Self.flagText[Int(v.flags.rawValue & 0x7f)])
    }

    // MARK: Pieces of CommandRequest.summary and CommandResponse.summary

    static let requestStart = Array(" > cmd-req ".utf8)
    static let responseStart = Array(" < cmd-resp ".utf8)

    /// `0:0 tag 0x... simple Read(10) lba 8 len 8 data-out 4096 (64 of 4096 payload bytes captured)`:
    /// the request's summary after its kind word.
    static func requestBody(_ c: CommandRequestKey, _ out: inout [UInt8]) {
        decimal(UInt64(c.target), &out)
        out.append(0x3a)  // ":"
        decimal(UInt64(c.lun), &out)
        out.append(contentsOf: tagWord)
        hex16(c.id, &out)
        out.append(0x20)
        out.append(contentsOf: attributeNames[Int(c.taskAttribute)])
        if c.priority != 0 { out.append(contentsOf: prioWord); decimal(UInt64(c.priority), &out) }
        if c.crn != 0 { out.append(contentsOf: crnWord); decimal(UInt64(c.crn), &out) }
        out.append(0x20)
        out.append(contentsOf: opcodeNames[Int(c.opcode)])
        if c.immed { out.append(contentsOf: immedWord) }
        if c.hasLBA {
            out.append(contentsOf: lbaWord)
            decimal(c.lba, &out)
            out.append(contentsOf: lenWord)
            decimal(UInt64(c.blocks), &out)
        }
        if c.dpo { out.append(contentsOf: dpoWord) }
        if c.fua { out.append(contentsOf: fuaWord) }
        if c.payloadCaptured > 0 { out.append(contentsOf: dataOutWord); decimal(c.payloadCaptured, &out) }
        payloadNote(c.payloadCaptured, c.payloadLength, &out)
    }

    static func responseBody(_ r: CommandResponseKey, _ out: inout [UInt8]) {
        out.append(contentsOf: responseNames[Int(r.response)])
        if r.response == 0 || r.status != 0 {
            out.append(0x20)
            out.append(contentsOf: statusNames[Int(r.status)])
        }
        out.append(contentsOf: residualWord)
        decimal(UInt64(r.residual), &out)
        if r.payloadCaptured > 0 { out.append(contentsOf: dataInWord); decimal(r.payloadCaptured, &out) }
        payloadNote(r.payloadCaptured, r.payloadLength, &out)
    }

    /// ChainDecode.summary's ` (64 of 4096 payload bytes captured)`.
    static func payloadNote(_ captured: UInt64, _ length: UInt64, _ out: inout [UInt8]) {
        guard captured < length else { return }
        out.append(0x20)
        out.append(0x28)
        decimal(captured, &out)
        out.append(contentsOf: ofWord)
        decimal(length, &out)
        out.append(contentsOf: capturedWord)
    }

    static let tagWord = Array(" tag ".utf8)
    static let prioWord = Array(" prio ".utf8)
    static let crnWord = Array(" crn ".utf8)
    static let immedWord = Array(" immed".utf8)
    static let lbaWord = Array(" lba ".utf8)
    static let lenWord = Array(" len ".utf8)
    static let dpoWord = Array(" dpo".utf8)
    static let fuaWord = Array(" fua".utf8)
    static let dataOutWord = Array(" data-out ".utf8)
    static let dataInWord = Array(" data-in ".utf8)
    static let residualWord = Array(" residual ".utf8)
    static let ofWord = Array(" of ".utf8)
    static let capturedWord = Array(" payload bytes captured)".utf8)

    // Names, from their one definition each.
    static let attributeNames: [[UInt8]] = (0...255).map { Array(TaskAttribute(rawValue: UInt8($0)).name.lowercased().utf8) }
    static let opcodeNames: [[UInt8]] = (0...255).map { Array(SCSIOpcodes.name(opcode: UInt8($0), serviceAction: nil).utf8) }
    static let responseNames: [[UInt8]] = (0...255).map { Array(VirtioSCSIResponse(rawValue: UInt8($0)).name(in: .command).utf8) }
    static let statusNames: [[UInt8]] = (0...255).map { Array(SAMStatus.name(UInt8($0)).utf8) }
    /// ` [indirect,snaplen]` for each combination of the named flags (nothing for none).
    static let flagText: [[UInt8]] = (0..<128).map { bits in
        let names = RecordFlags(rawValue: UInt32(bits)).names
        return names.isEmpty ? [] : Array(" [\(names.joined(separator: ","))]".utf8)
    }

    // MARK: Numbers

    static func decimal(_ v: UInt64, _ out: inout [UInt8]) {
        if v < 10 {
            out.append(0x30 &+ UInt8(truncatingIfNeeded: v))
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: enough for 20 digits
        var n = 0
        withUnsafeMutableBytes(of: &digits) { buf in
            var x = v
            while x > 0 {
                buf[23 - n] = 0x30 &+ UInt8(truncatingIfNeeded: x % 10)
                x /= 10
                n += 1
            }
            out.append(contentsOf: buf[(24 - n)...])
        }
    }

    static let hexDigits = Array("0123456789abcdef".utf8)

    /// Hex.u64: `0x` and 16 lower-case digits.
    static func hex16(_ v: UInt64, _ out: inout [UInt8]) {
        out.append(0x30)
        out.append(0x78)
        var shift: UInt64 = 60
        while true {
            out.append(hexDigits[Int((v >> shift) & 0xf)])
            if shift == 0 { break }
            shift -= 4
        }
    }

    /// RecordFormatter.clock: `HH:MM:SS.nnnnnnnnn`, UTC.
    static func clock(_ ns: UInt64, _ out: inout [UInt8]) {
        let secondsOfDay = (ns / 1_000_000_000) % 86_400
        two(secondsOfDay / 3600, &out)
        out.append(0x3a)
        two((secondsOfDay / 60) % 60, &out)
        out.append(0x3a)
        two(secondsOfDay % 60, &out)
        out.append(0x2e)
        var frac = ns % 1_000_000_000
        var divisor: UInt64 = 100_000_000
        while divisor > 0 {
            out.append(0x30 &+ UInt8(truncatingIfNeeded: frac / divisor))
            frac %= divisor
            divisor /= 10
        }
    }

    private static func two(_ v: UInt64, _ out: inout [UInt8]) {
        out.append(0x30 &+ UInt8(truncatingIfNeeded: v / 10))
        out.append(0x30 &+ UInt8(truncatingIfNeeded: v % 10))
    }
}
