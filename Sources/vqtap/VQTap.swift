import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

// The composition root (DESIGN.md): it only lists subcommands, one file each, and maps
// errors to the exit status table.

@main
struct VQTap: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vqtap",
        abstract: "Capture and decode virtqueue traffic (virtio-scsi).",
        discussion: """
            Exit status: 0 success, 1 usage or unreadable input, 2 input partly read, \
            3 the device or its memory went away. See vqtap(1).
            """,
        version: VersionInfo.text,
        subcommands: [Decode.self, Simulate.self, Capture.self, Inflight.self, Top.self, Stats.self, Demo.self]
    )

    static func main() {
        let status: Int32
        do {
            var command = try parseAsRoot()
            try command.run()
            status = ExitStatus.success.rawValue
        } catch let failure as VQTapFailure {
            StandardError.write("vqtap: \(failure.message)")
            status = failure.status.rawValue
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if code == .success {
                if !message.isEmpty { print(message) }
                status = 0
            } else {
                if !message.isEmpty { StandardError.write(message) }
                // ArgumentParser uses EX_USAGE (64) for usage errors; our table says 1.
                status = code == .validationFailure ? ExitStatus.usageOrUnreadable.rawValue : code.rawValue
            }
        }
        fflush(nil)
        Glibc.exit(status)
    }
}
