import ArgumentParser

// The composition root (DESIGN.md): it only lists subcommands. Each subcommand is a file.

@main
struct VQTap: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vqtap",
        abstract: "Capture and decode virtqueue traffic (virtio-scsi).",
        discussion: "See vqtap(1). Exit status: 0 success, 1 usage or unreadable input, 2 input partly read, 3 the device or its memory went away.",
        version: VersionInfo.text,
        subcommands: [Simulate.self]
    )
}
