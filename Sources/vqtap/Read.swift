import ArgumentParser
import Foundation
import PcapNG
import VQAnalysis
import VQOutput
import VQRecord
import VQWire
import VirtioSCSI
import CVQSys

// `vqtap read`: decode a capture file (pcap or pcapng, through libpcap) exactly as live
// capture prints it (the same RecordPresenter), count it (-q), or convert it (-w, --encap).
// man/vqtap-read.1.

/// `-w` and its companions, shared by `capture` and `read`.
struct WriteOptions: ParsableArguments {
    @Option(name: .customShort("w"), help: ArgumentHelp("Write the records to this pcapng file ('-' for standard output).", valueName: "file"))
    var writeFile: String?

    @Option(name: .customShort("C"), help: ArgumentHelp("With -w: start a new file after this many millions of bytes.", valueName: "MB"))
    var fileSizeMB: Int?

    @Option(name: .customShort("W"), help: ArgumentHelp("With -C or -G: keep a ring of this many files.", valueName: "N"))
    var fileCount: Int?

    @Option(name: .customShort("G"), help: ArgumentHelp("With -w: start a new file every this many seconds (of capture time).", valueName: "seconds"))
    var rotateSeconds: Int?

    @Flag(name: .long, help: "With -w: also print the records.")
    var print = false

    @Option(name: .long, help: ArgumentHelp("With -w: native (vqtap records, for the Lua dissector) or iscsi (exported iSCSI PDUs for stock Wireshark).", valueName: "encap"))
    var encap: CaptureEncapsulation = .native

    func validate() throws {
        if writeFile == nil && (fileSizeMB != nil || fileCount != nil || rotateSeconds != nil || print || encap != .native) {
            throw ValidationError("-C, -W, -G, --print and --encap go with -w")
        }
        if let fileSizeMB, fileSizeMB < 1 { throw ValidationError("-C: at least 1 (million bytes)") }
        if let rotateSeconds, rotateSeconds < 1 { throw ValidationError("-G: at least 1 second") }
        if let fileCount, fileCount < 1 { throw ValidationError("-W: at least 1 file") }
        if fileCount != nil && fileSizeMB == nil && rotateSeconds == nil { throw ValidationError("-W goes with -C or -G") }
        if writeFile == "-" && (fileSizeMB != nil || rotateSeconds != nil) { throw ValidationError("-C and -G need a file name, not '-'") }
    }

    var rotation: RotationOptions {
        RotationOptions(maxFileBytes: fileSizeMB.map { UInt64($0) * 1_000_000 },
                        maxFileDurationNs: rotateSeconds.map { UInt64($0) * 1_000_000_000 }, fileCount: fileCount)
    }

    /// The sink for -w, or nil without it. `command` names the subcommand in errors.
    func makeSink(command: String) throws -> (any CaptureSink)? {
        guard let writeFile else { return nil }
        let options = CaptureFiles.options(rotation: rotation)
        do {
            switch encap {
            case .native: return try CaptureFileWriter(path: writeFile, encoder: RecordPacketEncoder(), options: options)
            case .iscsi: return try CaptureFileWriter(path: writeFile, encoder: ISCSIExportEncoder(), options: options)
            }
        } catch {
            throw VQTapFailure("\(command): -w \(error.description)")
        }
    }
}

enum CaptureEncapsulation: String, ExpressibleByArgument, CaseIterable {
    case native, iscsi
}

enum CaptureFiles {
    /// Section header options: vqtap's version, the machine and the system (capinfos shows them).
    static func options(rotation: RotationOptions) -> CaptureFileOptions {
        var u = utsname()
        uname(&u)
        func text<T>(_ field: T) -> String {
            withUnsafeBytes(of: field) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
        }
        return .init(hardware: text(u.machine), os: "\(text(u.sysname)) \(text(u.release))",
                     userApplication: "vqtap \(VersionInfo.version)", rotation: rotation,
                     queueName: { type, queue in type == 8 ? VirtioSCSIQueueRole(queue: queue).name : "queue\(queue)" })
    }
}

struct Read: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "read",
        abstract: "Decode a capture file (pcap or pcapng) as live capture prints it.",
        discussion: """
            FILE ('-' for standard input) holds vqtap capture records (LINKTYPE_USER0). A \
            record that does not decode is reported with its frame number and skipped; a file \
            cut short is read up to its last complete block. Exit status 2 when the file was \
            cut short or held bad records, 1 when it could not be read at all. \
            See vqtap-read(1).
            Examples: vqtap read cap.pcapng -v
                      vqtap read cap.pcapng -w cap-iscsi.pcapng --encap iscsi
            """)

    @Argument(help: ArgumentHelp("The capture file, or '-' for standard input.", valueName: "file"))
    var file: String?

    @Option(name: .customShort("r"), help: ArgumentHelp("The capture file (instead of the positional FILE).", valueName: "file"))
    var readFile: String?

    @OptionGroup var output: OutputOptions
    @OptionGroup var write: WriteOptions

    @Option(name: .customShort("c"), help: ArgumentHelp("Stop after this many records.", valueName: "count"))
    var count: Int?

    @Flag(name: .customShort("q"), help: "Print only the totals: records per kind, errors, drops.")
    var quiet = false

    func validate() throws {
        if file != nil && readFile != nil { throw ValidationError("give the file once: FILE or -r FILE") }
        if file == nil && readFile == nil { throw ValidationError("no capture file: vqtap read FILE (or -r FILE, '-' for standard input)") }
        if let count, count < 1 { throw ValidationError("-c: at least 1") }
    }

    /// What -q prints.
    struct Totals {
        /// Records per kind, by raw kind value.
        var perKind = [Int](repeating: 0, count: 256)
        var undecodable = 0
        var badRecords = 0
        var dropped: UInt64 = 0
        /// Records with each flag bit set (names only at the end: this runs per record).
        var flagBits = [Int](repeating: 0, count: 32)

        mutating func count(_ d: DecodedRecord?, record: CaptureRecord) {
            perKind[Int(record.kind.rawValue)] += 1
            if case let .drop(m) = record.body { dropped &+= m.count }
            if let d, case .undecodable? = d.decode?.content { undecodable += 1 }
            count(flags: record.flags)
        }

        /// A record the fast path decoded: a command or its completion, decodable.
        mutating func count(_ v: RecordView) {
            perKind[Int(v.kind.rawValue)] += 1
            count(flags: v.flags)
        }

        private mutating func count(flags: RecordFlags) {
            var bits = flags.rawValue
            while bits != 0 {
                let b = bits.trailingZeroBitCount
                flagBits[b] += 1
                bits &= bits - 1
            }
        }

        var flagged: [String: Int] {
            var out: [String: Int] = [:]
            for (b, n) in flagBits.enumerated() where n > 0 {
                let names = RecordFlags(rawValue: 1 << UInt32(b)).names
                out[names.first ?? "bit\(b)", default: 0] += n
            }
            return out
        }

        var lines: [String] {
            let total = perKind.reduce(0, +)
            let kinds = RecordKind.allCases.map { "\($0.name) \(perKind[Int($0.rawValue)])" }.joined(separator: ", ")
            var out = ["\(total) records: \(kinds)"]
            out.append("\(dropped) chains dropped")
            out.append("\(undecodable) undecodable, \(badRecords) bad records")
            if !flagged.isEmpty {
                out.append("flags: " + flagged.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            }
            return out
        }
    }

    func run() throws {
        let path = readFile ?? file ?? "-"
        let reader: PcapFileReader
        do { reader = try PcapFileReader(path: path) } catch { throw VQTapFailure("read: \(error.description)") }
        var sink = try write.makeSink(command: "read")
        let printing = !quiet && (sink == nil || write.print)
        if sink == nil && (quiet || (output.format == .text && output.verbosity == 0)) {
            // A file is read ahead on the other core; a pipe's records come as they arrive.
            guard ReadAheadReader.suits(path: path) else { return try runFast(reader, path: path) }
            let ahead = ReadAheadReader(reader)
            defer { ahead.close() }
            return try runFast(ahead, path: path)
        }
        var presenter = RecordPresenter(verbosity: output.verbosity, format: output.format)
        var decoder = RecordDecoder()
        var totals = Totals()
        var out = LineWriter()
        var status = ExitStatus.success
        var records = 0
        while count.map({ records < $0 }) ?? true {
            let record: CaptureRecord
            do {
                guard let r = try reader.nextRecord() else { break }
                record = r
            } catch let error where error.isRecoverable {
                out.flush()
                StandardError.write("vqtap: read: \(error.description)")
                totals.badRecords += 1
                status = .partlyRead
                continue
            } catch {
                out.flush()
                StandardError.write("vqtap: read: \(error.description)")
                status = .partlyRead
                break
            }
            records += 1
            if sink != nil {
                do { try sink?.write(record) } catch {
                    out.flush()
                    throw VQTapFailure("read: -w \(error)")
                }
            }
            if printing {
                if let text = presenter.render(record) { out.append(text) }
            } else if quiet {
                totals.count(decoder.decode(record), record: record)
            }
        }
        if var s = sink {
            do { try s.close() } catch { throw VQTapFailure("read: -w \(error)") }
        }
        if quiet { for l in totals.lines { out.append(l) } }
        out.flush()
        if status != .success { throw VQTapFailure("read: \(path): \(records) records read", status: status) }
    }

    /// -q and one-line text: commands and completions are read in place from libpcap's
    /// buffer (RecordView, RecordDecoder.decodeFast) and their lines written straight into
    /// the output buffer; every other record takes the full decode, with the same pairing
    /// state, so the output is the same.
    private func runFast<Reader: PacketReader>(_ reader: Reader, path: String) throws {
        var decoder = RecordDecoder()
        let formatter = RecordFormatter(verbosity: 0)
        var lines = FastLineFormatter()
        var totals = Totals()
        var out = LineWriter()
        var status = ExitStatus.success
        var records = 0
        let quiet = quiet
        let limit = count ?? .max
        while records < limit {
            do {
                let more = try reader.nextPacket { ns, raw throws(DecodeError) -> Bool in
                    if let view = RecordView(raw, timestampNs: ns), case let fast = decoder.decodeFast(view), fast != .full {
                        if quiet { totals.count(view) } else { out.appendLine { lines.append(view, fast, decoder: decoder, to: &$0) } }
                    } else {
                        let record = try CaptureRecord(decoding: Array(raw), timestampNs: ns)
                        let d = decoder.decode(record)
                        if quiet { totals.count(d, record: record) } else { out.append(formatter.text(d)) }
                    }
                    return true
                }
                guard more != nil else { break }
                records += 1
            } catch let error where error.isRecoverable {
                out.flush()
                StandardError.write("vqtap: read: \(error.description)")
                totals.badRecords += 1
                status = .partlyRead
            } catch {
                out.flush()
                StandardError.write("vqtap: read: \(error.description)")
                status = .partlyRead
                break
            }
        }
        if quiet { for l in totals.lines { out.append(l) } }
        out.flush()
        if status != .success { throw VQTapFailure("read: \(path): \(records) records read", status: status) }
    }
}

extension LineWriter {
    /// A line written by `body` straight into the buffer (the newline is added).
    mutating func appendLine(_ body: (inout [UInt8]) -> Void) {
        if buffer.isEmpty { firstPendingNs = vq_monotonic_ns() }
        body(&buffer)
        buffer.append(0x0a)
        if buffer.count >= 1 << 16 { flush() }
    }
}
