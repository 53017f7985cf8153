import Foundation
import TestSupport
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

    private let server: UnixLineServer
    private let log: RequestLog

    var directory: String { server.directory }
    var path: String { server.path }

    /// The commands received, in order (qmp_capabilities included).
    var requests: [String] { log.commands }

    init(greeting: String = QMPFixtures.greeting, handler: @escaping Handler) throws {
        let log = RequestLog()
        self.log = log
        server = try UnixLineServer(name: "vqtap-qmp", greeting: greeting) { line in
            guard let request = QMPValue.parse(line), let command = request["execute"]?.string else { return [] }
            log.append(command)
            let id = request["id"].map { #", "id": \#($0.json)"# } ?? ""
            var steps = handler(command, request["arguments"])
            if steps.isEmpty && command == "qmp_capabilities" { steps = [.answer("{}")] }
            return steps.map { step in
                switch step {
                case .answer(let json): return .send(#"{"return": \#(json)\#(id)}"# + "\r\n")
                case .error(let json): return .send(#"{"error": \#(json)\#(id)}"# + "\r\n")
                case .event(let name, let data):
                    return .send(#"{"timestamp": {"seconds": 1795557447, "microseconds": 262287}, "event": "\#(name)", "data": \#(data)}"# + "\r\n")
                case .raw(let text): return .send(text)
                case .close: return .close
                }
            }
        }
    }

    func stop() { server.stop() }
}

/// The commands the server thread received.
private final class RequestLog: @unchecked Sendable {
    private let lock = NSLock()
    private var received: [String] = []

    var commands: [String] { lock.withLock { received } }
    func append(_ command: String) { lock.withLock { received.append(command) } }
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
