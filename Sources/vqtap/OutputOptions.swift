import ArgumentParser

/// `-T`: the output formats shared by every subcommand that prints records.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// `-v`, `-vv` and `-T`, shared by the subcommands that print decodes (tcpdump's letters).
struct OutputOptions: ParsableArguments {
    @Flag(name: .customShort("v"), help: "More detail: -v prints every field, -vv adds a hex dump.")
    var verbosity: Int

    @Option(name: .customShort("T"), help: ArgumentHelp("Output format: text or json (JSON lines).", valueName: "format"))
    var format: OutputFormat = .text
}
