import ArgumentParser
import Foundation

/// DESIGN.md's exit status table, the same for every subcommand (vqtap(1), EXIT STATUS).
enum ExitStatus: Int32 {
    case success = 0
    /// Usage error, or input that could not be read at all.
    case usageOrUnreadable = 1
    /// Input partly read: a file cut short or corrupt after its readable records were decoded.
    case partlyRead = 2
    /// The device or its memory went away.
    case deviceGone = 3
}

/// An error a subcommand reports as one line on stderr, with its exit status.
struct VQTapFailure: Error, CustomStringConvertible {
    var message: String
    var status: ExitStatus
    init(_ message: String, status: ExitStatus = .usageOrUnreadable) {
        self.message = message
        self.status = status
    }
    var description: String { message }
}

enum StandardError {
    static func write(_ line: String) {
        var text = line
        if !text.hasSuffix("\n") { text += "\n" }
        FileHandle.standardError.write(Data(text.utf8))
    }
}
