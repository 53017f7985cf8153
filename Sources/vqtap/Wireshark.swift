import ArgumentParser
import Foundation
import VQOutput

// `vqtap wireshark`: the Lua dissector for vqtap captures, shipped inside the binary
// (man/vqtap-wireshark.1). Its field declarations are generated from the Swift field
// registries, so names never drift between JSON, text and Wireshark.

struct Wireshark: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Install or print the Wireshark dissector for vqtap captures.",
        subcommands: [Install.self, Print.self])

    struct Install: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the dissector to the personal Wireshark plugins folder.",
            discussion: "The folder is ~/.local/lib/wireshark/plugins/ (or --dir). Wireshark and tshark load it at start.")

        @Option(name: .long, help: ArgumentHelp("The plugins folder.", valueName: "dir"))
        var dir: String?

        func run() throws {
            let folder = dir ?? (NSHomeDirectory() + "/.local/lib/wireshark/plugins")
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                let path = folder + "/" + LuaDissector.fileName
                try Data(LuaDissector.source.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
                print(path)
            } catch {
                throw VQTapFailure("wireshark install: \(error.localizedDescription)")
            }
        }
    }

    struct Print: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the dissector (load it with tshark -X lua_script:FILE).")

        func run() throws {
            FileHandle.standardOutput.write(Data(LuaDissector.source.utf8))
        }
    }
}
