import Foundation
import TestSupport

/// A QMP socket that presents a running `vqtap simulate` as QEMU would present its
/// virtio-scsi device: x-query-virtio, -status and -queue-status from the simulator's layout
/// file, its memory file as a shared memory-backend-file, and `info mtree -f` mapping it.
/// `vqtap capture --qmp` and `top --qmp` then attach to real rings that move. `resetAfter`
/// status polls into the run, the device reports a driver reset (status 0) for
/// `resetPolls` polls, then DRIVER_OK again with the same rings, as a guest's reboot of the
/// driver does.
final class SimulatedQEMU: @unchecked Sendable {
    private let layoutPath: String
    private let lock = NSLock()
    private var statusPolls = 0
    private var server: UnixLineServer?
    var resetAfter: Int?
    var resetPolls = 200

    var directory: String { server?.directory ?? "" }
    var path: String { server?.path ?? "" }

    init(layout: String) throws {
        layoutPath = layout
        let greeting = #"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "vqtap simulate"}, "capabilities": []}}"#
        server = try UnixLineServer(name: "vqtap-simqmp", greeting: greeting) { [weak self] line in
            self?.reply(to: line) ?? [.close]
        }
    }

    deinit { stop() }

    func stop() { server?.stop() }

    /// The simulator's layout file, as JSON.
    private func layout() -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: layoutPath),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
        return object
    }

    private static func number(_ value: Any?) -> UInt64 {
        if let n = value as? NSNumber { return n.uint64Value }
        if let s = value as? String { return s.hasPrefix("0x") ? UInt64(s.dropFirst(2), radix: 16) ?? 0 : UInt64(s) ?? 0 }
        return 0
    }

    private func json(_ value: Any) -> String {
        (try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed])).map { String(decoding: $0, as: UTF8.self) } ?? "null"
    }

    /// The `return` value for one command; nil: an error answer.
    private func answer(_ command: String, _ arguments: [String: Any]) -> Any? {
        let l = layout()
        let queues = l["queues"] as? [[String: Any]] ?? []
        switch command {
        case "qmp_capabilities": return [String: Any]()
        case "x-query-virtio": return [["name": "virtio-scsi", "path": "/machine/peripheral/scsi0/virtio-backend"]]
        case "x-query-virtio-status":
            let poll = lock.withLock { () -> Int in statusPolls += 1; return statusPolls }
            let resetting = resetAfter.map { poll > $0 && poll <= $0 + resetPolls } ?? false
            // Feature bits as QEMU's "unknown" numbers; status ACKNOWLEDGE|DRIVER|DRIVER_OK|FEATURES_OK.
            let features = resetting ? 0 : Self.number(l["features"])
            return ["name": "virtio-scsi", "device-id": 8, "num-vqs": queues.count, "broken": false,
                    "status": ["statuses": [String](), "unknown-statuses": resetting ? 0 : 15],
                    "guest-features": ["dev-features": [String](), "transports": [String](), "unknown-dev-features": features],
                    "host-features": ["dev-features": [String](), "transports": [String](), "unknown-dev-features": Self.number(l["features"])]]
        case "x-query-virtio-queue-status":
            let index = Self.number(arguments["queue"])
            guard let q = queues.first(where: { Self.number($0["index"]) == index }) else { return nil }
            return ["queue-index": index, "vring-num": Self.number(q["size"]), "vring-desc": Self.number(q["desc"]),
                    "vring-avail": Self.number(q["avail"]), "vring-used": Self.number(q["used"]),
                    "last-avail-idx": 0, "used-idx": 0, "inuse": 0]
        case "qom-list": return [["name": "type", "type": "string"], ["name": "mem", "type": "child<memory-backend-file>"]]
        case "qom-get":
            switch arguments["property"] as? String {
            case "share": return true
            case "mem-path": return ((l["regions"] as? [[String: Any]])?.first?["file"] as? String) ?? ""
            default: return nil
            }
        case "human-monitor-command":
            var text = "FlatView #0\r\n AS \"memory\", root: system\r\n Root memory region: system\r\n"
            for r in l["regions"] as? [[String: Any]] ?? [] {
                let gpa = Self.number(r["gpa"]), size = Self.number(r["size"]), offset = Self.number(r["offset"])
                text += "  " + String(format: "%016llx-%016llx", gpa, gpa + size - 1) + " (prio 0, ram): mem"
                text += offset == 0 ? "\r\n" : " @" + String(format: "%016llx", offset) + "\r\n"
            }
            return text
        default: return nil
        }
    }

    private func reply(to line: Data) -> [UnixLineServer.Reply] {
        guard let request = try? JSONSerialization.jsonObject(with: line) as? [String: Any],
              let command = request["execute"] as? String else { return [] }
        let id = request["id"].map { #", "id": \#(json($0))"# } ?? ""
        if let value = answer(command, request["arguments"] as? [String: Any] ?? [:]) {
            return [.send(#"{"return": \#(json(value))\#(id)}"# + "\r\n")]
        }
        return [.send(#"{"error": {"class": "GenericError", "desc": "not simulated: \#(command)"}\#(id)}"# + "\r\n")]
    }
}
