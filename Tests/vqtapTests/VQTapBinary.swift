import Foundation

/// Runs the `vqtap` executable that `swift build --build-tests` put beside the test bundle,
/// so CLI tests see exactly what a user sees: stdout, stderr and the exit status.
struct VQTapRun {
    var status: Int32
    var stdout: String
    var stderr: String
}

enum VQTapBinary {
    static var url: URL {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        // The test bundle may be a directory (...PackageTests.xctest/...) on some platforms.
        while dir.pathExtension == "xctest" || dir.lastPathComponent == "Contents" || dir.lastPathComponent == "MacOS" {
            dir.deleteLastPathComponent()
        }
        return dir.appendingPathComponent("vqtap")
    }

    /// The repository root (for samples/ and man/).
    static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static func run(_ args: [String], stdin: String? = nil) throws -> VQTapRun {
        try run(args, stdinData: stdin.map { Data($0.utf8) })
    }

    static func run(_ args: [String], stdinData: Data?) throws -> VQTapRun {
        let p = Process()
        p.executableURL = url
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let input = Pipe()
        p.standardInput = input
        try p.run()
        // Feed standard input from another thread: a large input must not block on a full pipe.
        let writer = input.fileHandleForWriting
        let feeder = Thread {
            if let stdinData { writer.write(stdinData) }
            try? writer.close()
        }
        feeder.start()
        // Read both pipes before waiting, and stderr on its own thread: a child that fills
        // one pipe while we wait on the other would deadlock.
        let errReader = err.fileHandleForReading
        nonisolated(unsafe) var e = Data()
        let drained = DispatchSemaphore(value: 0)
        Thread {
            e = errReader.readDataToEndOfFile()
            drained.signal()
        }.start()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        drained.wait()
        p.waitUntilExit()
        return VQTapRun(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }
}
