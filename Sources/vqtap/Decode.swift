import ArgumentParser
import Foundation
import VQOutput
import VQWire
import VirtioSCSI

/// `vqtap decode`: decode one virtio-scsi message (or a CDB, sense data, a configuration)
/// pasted as hex, as a person finds it in a hex dump, a trace or a debugger.
struct Decode: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decode virtio-scsi bytes given in hex.",
        discussion: """
            Bytes come as arguments or on standard input ('-'): space-separated pairs or one \
            hex string, with or without 0x; '#' starts a comment; offset columns of tcpdump -x \
            and xxd are skipped. Bytes past a request header are data-out, past a response \
            header data-in.
            Examples: vqtap decode --kind cdb 28 00 00 00 08 00 00 00 08 00
                      vqtap decode --kind event -v - < event.hex
            """
    )

    @Option(name: .long, help: "What the bytes are.")
    var kind: MessageKind

    @Option(name: .long, help: "CDB size in the request header (virtio_scsi_config.cdb_size).")
    var cdbSize: Int = VirtioSCSI.defaultCDBSize

    @Option(name: .long, help: "Sense buffer size in the response (virtio_scsi_config.sense_size).")
    var senseSize: Int = VirtioSCSI.defaultSenseSize

    @Flag(name: .customLong("t10-pi"), help: "The request carries the T10 PI fields (VIRTIO_SCSI_F_T10_PI, Linux's layout).")
    var t10PI = false

    @Option(name: .long, help: ArgumentHelp("With --kind cmd-resp: the CDB of the request it answers (hex, one word or quoted pairs), so that its data-in decodes (INQUIRY, READ CAPACITY, REPORT LUNS).", valueName: "hex"))
    var command: String?

    @OptionGroup var output: OutputOptions

    @Argument(help: "The bytes in hex, or '-' to read them from standard input.")
    var bytes: [String] = []

    func validate() throws {
        guard (1...260).contains(cdbSize) else { throw ValidationError("--cdb-size must be 1 to 260, not \(cdbSize)") }
        guard (0...252).contains(senseSize) else { throw ValidationError("--sense-size must be 0 to 252, not \(senseSize)") }
        if bytes.contains("-") && bytes.count > 1 { throw ValidationError("'-' reads the bytes from standard input and cannot be mixed with hex arguments") }
    }

    func run() throws {
        let text: String
        if bytes.isEmpty || bytes == ["-"] {
            let data: Data
            do { data = try FileHandle.standardInput.readToEnd() ?? Data() } catch {
                throw VQTapFailure("decode: cannot read standard input: \(error.localizedDescription)")
            }
            text = String(decoding: data, as: UTF8.self)
        } else {
            text = bytes.joined(separator: " ")
        }
        let raw: [UInt8]
        do { raw = try Hex.parse(text) } catch {
            throw VQTapFailure("decode: \(error.description)")
        }
        guard !raw.isEmpty else { throw VQTapFailure("decode: no bytes given (pass hex bytes or '-' for standard input)") }

        var request: SCSICommand?
        if let command {
            guard kind == .commandResponse else { throw VQTapFailure("decode: --command goes with --kind cmd-resp") }
            let cdb: [UInt8]
            do { cdb = try Hex.parse(command) } catch { throw VQTapFailure("decode: --command: \(error.description)") }
            do { request = try SCSICommand(decoding: cdb) } catch { throw VQTapFailure("decode: --command: \(error.description)") }
        }
        let message: any FieldDescribable
        do {
            message = try VirtioSCSIDecoder.decode(kind: kind, bytes: raw, cdbSize: cdbSize, senseSize: senseSize, t10PI: t10PI, command: request)
        } catch {
            throw VQTapFailure("decode: \(kind.rawValue): \(error.description)")
        }
        print(DecodeRendering.render(message, kind: kind.rawValue, bytes: raw, verbosity: output.verbosity, format: output.format))
    }
}

extension MessageKind: ExpressibleByArgument {}

/// The three tiers of tcpdump (one line, -v, -vv with a hex dump) and JSON.
enum DecodeRendering {
    static func render(_ message: any FieldDescribable, kind: String, bytes: [UInt8], verbosity: Int, format: OutputFormat) -> String {
        switch format {
        case .json:
            return FieldJSON.line(message.fields, extra: [("kind", .string(kind)), ("length", .number(String(bytes.count)))])
        case .text:
            var lines = [message.summary]
            if verbosity >= 1 { lines += FieldText.lines(message.fields, indent: 1) }
            if verbosity >= 2 { lines += Hex.dump(bytes) }
            return lines.joined(separator: "\n")
        }
    }
}
