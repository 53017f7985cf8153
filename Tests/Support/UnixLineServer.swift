import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A server on a unix socket in a temp directory for tests that play a peer speaking lines
/// (QMP): a thread accepts one connection, sends the greeting, and answers every line the
/// client sends with what `handler` returns. The fake QEMUs of the test suites are handlers.
public final class UnixLineServer: @unchecked Sendable {
    public enum Reply: Sendable {
        /// Bytes sent as they are (no newline added).
        case send(String)
        /// Hang up now.
        case close
    }

    public typealias Handler = @Sendable (_ line: Data) -> [Reply]

    public let directory: String
    public let path: String
    private let listenFD: Int32
    private let greeting: String
    private let handler: Handler
    private let lock = NSLock()
    private var stopped = false

    /// `name` goes into the directory's name (`/tmp/NAME-PID-RANDOM/socket`).
    public init(name: String, greeting: String, handler: @escaping Handler) throws {
        directory = NSTemporaryDirectory() + "\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        path = directory + "/qmp.sock"
        self.greeting = greeting
        self.handler = handler
        listenFD = try Self.listen(path: path)
        Thread { [self] in self.serve() }.start()
    }

    deinit { stop() }

    public func stop() {
        let already = lock.withLock { () -> Bool in
            defer { stopped = true }
            return stopped
        }
        if already { return }
        shutdown(listenFD, Int32(SHUT_RDWR))
        close(listenFD)
        try? FileManager.default.removeItem(atPath: directory)
    }

    static func listen(path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() where i < raw.count - 1 { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard fd >= 0, rc == 0, Glibc.listen(fd, 4) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey:
                "test server: cannot listen on \(path): \(String(cString: strerror(errno)))"])
        }
        return fd
    }

    private func serve() {
        let conn = accept(listenFD, nil, nil)
        guard conn >= 0 else { return }
        defer { close(conn) }
        guard send(conn, greeting + "\r\n") else { return }
        var buffer: [UInt8] = []
        while true {
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = chunk.withUnsafeMutableBytes { read(conn, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            buffer.append(contentsOf: chunk[..<n])
            while let nl = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Data(buffer[..<nl])
                buffer.removeSubrange(...nl)
                for reply in handler(line) {
                    switch reply {
                    case .send(let text): if !send(conn, text) { return }
                    case .close: return
                    }
                }
            }
        }
    }

    private func send(_ conn: Int32, _ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { Glibc.send(conn, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }
}
