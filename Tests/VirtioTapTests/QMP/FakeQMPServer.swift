import Foundation
@testable import VirtioTap

// A QMP server on a unix socket in a temp directory, answering from a script: a thread
// accepts one connection, greets, and for every request line runs the handler, which
// returns the steps to play (answers, errors, events, raw bytes, silence, hang-up).

final class FakeQMPServer: @unchecked Sendable {
    enum Step {
        /// `{"return": JSON, "id": <request id>}`
        case answer(String)
        /// `{"error": JSON, "id": <request id>}`
        case error(String)
        /// `{"event": NAME, "data": JSON, "timestamp": ...}`
        case event(String, String)
        /// Bytes sent as they are (no newline added).
        case raw(String)
        /// Hang up now.
        case close
    }

    typealias Handler = @Sendable (_ command: String, _ arguments: QMPValue?) -> [Step]

    let directory: String
    let path: String
    private let listenFD: Int32
    private let handler: Handler
    private let greeting: String
    private let lock = NSLock()
    private var _requests: [String] = []
    private var stopped = false

    /// The commands received, in order (qmp_capabilities included).
    var requests: [String] { lock.withLock { _requests } }

    init(greeting: String = QMPFixtures.greeting, handler: @escaping Handler) throws {
        directory = NSTemporaryDirectory() + "vqtap-qmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        path = directory + "/qmp.sock"
        self.handler = handler
        self.greeting = greeting
        listenFD = try Self.listen(path: path)
        let thread = Thread { [self] in self.serve() }
        thread.start()
    }

    deinit { stop() }

    func stop() {
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
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard fd >= 0, rc == 0, Glibc.listen(fd, 4) == 0 else {
            throw TapError("fake QMP server: cannot listen on \(path): \(String(cString: strerror(errno)))")
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
                guard let request = QMPValue.parse(line), let command = request["execute"]?.string else { continue }
                lock.withLock { _requests.append(command) }
                let id = request["id"].map { #", "id": \#($0.json)"# } ?? ""
                var steps = handler(command, request["arguments"])
                if steps.isEmpty && command == "qmp_capabilities" { steps = [.answer("{}")] }
                for step in steps {
                    let ok: Bool
                    switch step {
                    case .answer(let json): ok = send(conn, #"{"return": \#(json)\#(id)}"# + "\r\n")
                    case .error(let json): ok = send(conn, #"{"error": \#(json)\#(id)}"# + "\r\n")
                    case .event(let name, let data):
                        ok = send(conn, #"{"timestamp": {"seconds": 1795557447, "microseconds": 262287}, "event": "\#(name)", "data": \#(data)}"# + "\r\n")
                    case .raw(let text): ok = send(conn, text)
                    case .close: return
                    }
                    if !ok { return }
                }
            }
        }
    }

    private func send(_ conn: Int32, _ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { Glibc.send(conn, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }
}

/// The answers of the QEMU recorded in QMPFixtures, as a handler: Linux driver ready unless
/// `status` says otherwise.
struct RecordedQEMU {
    var status = QMPFixtures.statusLinuxReady
    var queues = [QMPFixtures.queue0LinuxReady, QMPFixtures.queue1LinuxReady, QMPFixtures.queue2LinuxReady]
    var virtio = QMPFixtures.xQueryVirtio
    var qomList = QMPFixtures.qomListFile
    var mtree = QMPFixtures.mtree256M
    var share = "true"

    func handle(_ command: String, _ args: QMPValue?) -> [FakeQMPServer.Step] {
        switch command {
        case "x-query-virtio": return [.answer(virtio)]
        case "x-query-virtio-status":
            return args?["path"]?.string == "/machine/peripheral/scsi0/virtio-backend"
                ? [.answer(status)] : [.error(QMPFixtures.badPathError)]
        case "x-query-virtio-queue-status":
            guard let i = args?["queue"]?.int64, i >= 0, i < Int64(queues.count) else { return [.error(QMPFixtures.queue3Error)] }
            return [.answer(queues[Int(i)])]
        case "qom-list": return [.answer(qomList)]
        case "qom-get":
            switch args?["property"]?.string {
            case "mem-path": return qomList.contains("memory-backend-file") ? [.answer(QMPFixtures.memPath)] : [.error(QMPFixtures.memfdMemPathError)]
            case "share": return [.answer(share)]
            default: return [.error(#"{"class": "GenericError", "desc": "Property not found"}"#)]
            }
        case "human-monitor-command": return [.answer(QMPValue.string(mtree).json)]
        default: return []
        }
    }
}
