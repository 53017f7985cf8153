import Foundation

// The tap's completeness against the simulator's ground truth (benchmarks/tap, issue 4).
// Usage: vqtap-bench-compare TRUTH TAP_JSON
//   TRUTH     the simulator's --truth file (JSON lines);
//   TAP_JSON  `vqtap read -T json` of the capture (or live `capture -T json` output).
// Prints "total matched counted wrong late lateWrong": commands in the truth that completed
// after the tap attached; those captured intact with the same queue, tag, LUN, opcode, LBA,
// length, response and status; used records the tap counted (torn, malformed, orphan, a used
// length beyond the buffers, entries of a lapped used ring); captures that match no command
// of the truth, among those not flagged late; captures flagged late (copied after the chain
// was returned, no reuse seen); late captures that match nothing. On stderr: torn records
// (completions, requests) whose bytes were the command's after all (what a sharper torn
// verdict could win; measured small: the copy of a chain returned and reposted before it
// is the repost's).
// Usage: vqtap-bench-compare --anchor TRUTH KEYS
//   KEYS      what vqtap-tap-anchor copied ("attach WALL_NS", then "queue tag opcode lba").
// Prints "total matched": commands of request queues in the truth posted after the anchor
// attached; those whose queue, tag, opcode and LBA one of its copies holds.

struct Key: Hashable {
    var queue: Int
    var tag: String
    var target: Int
    var lun: Int
    var opcode: Int
    var lba: Int
    var length: Int
    var response: Int
    var status: Int
}

let readWrite: Set<Int> = [0x28, 0x2a, 0x88, 0x8a]

func key(queue: Int, _ scsi: [String: Any], response: Any?, status: Any?) -> Key {
    let lun = scsi["lun"] as? [String: Any] ?? [:]
    let cdb = scsi["cdb"] as? [String: Any] ?? [:]
    let opcode = cdb["opcode"] as? Int ?? -1
    let rw = readWrite.contains(opcode)
    return Key(queue: queue, tag: scsi["id"] as? String ?? "", target: lun["target"] as? Int ?? -1, lun: lun["lun"] as? Int ?? -1,
               opcode: opcode, lba: rw ? cdb["lba"] as? Int ?? -1 : -1, length: rw ? cdb["transfer_length"] as? Int ?? -1 : -1,
               response: response as? Int ?? -1, status: status as? Int ?? -1)
}

/// What the anchor copies of a command (and what a torn request still shows of it).
struct ShortKey: Hashable { var queue: Int; var tag: String; var opcode: Int; var lba: Int }

func shortKey(queue: Int, _ scsi: [String: Any]) -> ShortKey {
    let cdb = scsi["cdb"] as? [String: Any] ?? [:]
    let opcode = cdb["opcode"] as? Int ?? -1
    return ShortKey(queue: queue, tag: scsi["id"] as? String ?? "", opcode: opcode,
                    lba: readWrite.contains(opcode) ? cdb["lba"] as? Int ?? -1 : -1)
}

func jsonLines(_ path: String, _ each: ([String: Any]) -> Void) {
    guard let file = fopen(path, "r") else {
        FileHandle.standardError.write(Data("vqtap-bench-compare: cannot open \(path)\n".utf8))
        exit(1)
    }
    defer { fclose(file) }
    var line: UnsafeMutablePointer<CChar>?
    var capacity = 0
    while getline(&line, &capacity, file) > 0 {
        guard let line else { break }
        let data = Data(bytesNoCopy: line, count: strlen(line), deallocator: .none)
        if let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] { each(object) }
    }
    free(line)
}

/// The anchor's copies against the truth (see the usage above).
func compareAnchor(truthPath: String, keysPath: String) -> Never {
    guard let text = try? String(contentsOfFile: keysPath, encoding: .utf8) else {
        FileHandle.standardError.write(Data("vqtap-bench-compare: cannot read \(keysPath)\n".utf8))
        exit(1)
    }
    var attachNs: UInt64 = 0
    var copied: [ShortKey: Int] = [:]
    for line in text.split(separator: "\n") {
        let f = line.split(separator: " ")
        if f.count == 2, f[0] == "attach" { attachNs = UInt64(f[1]) ?? 0; continue }
        guard f.count == 4, let queue = Int(f[0]), let opcode = Int(f[2]), let lba = Int(f[3]) else { continue }
        copied[ShortKey(queue: queue, tag: String(f[1]), opcode: opcode, lba: lba), default: 0] += 1
    }
    var truth: [ShortKey: Int] = [:]
    jsonLines(truthPath) { t in
        guard t["kind"] as? String == "cmd", let queue = t["queue"] as? Int, queue >= 2,
              let used = (t["used_ns"] as? NSNumber)?.uint64Value, let avail = (t["avail_ns"] as? NSNumber)?.uint64Value,
              let time = (t["time_ns"] as? NSNumber)?.uint64Value, time &- used &+ avail >= attachNs else { return }
        truth[shortKey(queue: queue, t["virtio_scsi"] as? [String: Any] ?? [:]), default: 0] += 1
    }
    let total = truth.values.reduce(0, +)
    print(total, truth.reduce(0) { $0 + min($1.value, copied[$1.key] ?? 0) })
    exit(0)
}

let args = CommandLine.arguments
if args.count == 4 && args[1] == "--anchor" { compareAnchor(truthPath: args[2], keysPath: args[3]) }
guard args.count == 3 else {
    FileHandle.standardError.write(Data("usage: vqtap-bench-compare TRUTH TAP_JSON | --anchor TRUTH KEYS\n".utf8))
    exit(1)
}

var attachNs: UInt64?
var captured: [Key: Int] = [:]
var capturedLate: [Key: Int] = [:]
var capturedTorn: [Key: Int] = [:]
var tornRequests: [ShortKey: Int] = [:]
var missedShort: [ShortKey: Int] = [:]
var counted = 0
jsonLines(args[2]) { r in
    let kind = r["record"] as? String, queue = r["queue"] as? Int ?? 0
    if kind == "state" && attachNs == nil { attachNs = (r["time_ns"] as? NSNumber)?.uint64Value }
    guard queue >= 2 else { return }
    if kind == "drop" {
        if (r["reason"] as? String)?.hasPrefix("used") == true { counted += r["dropped"] as? Int ?? 0 }
        return
    }
    if kind == "available", Set(r["flags"] as? [String] ?? []).contains("torn") {
        tornRequests[shortKey(queue: queue, r["virtio_scsi"] as? [String: Any] ?? [:]), default: 0] += 1
    }
    guard kind == "used" else { return }
    let flags = Set(r["flags"] as? [String] ?? [])
    guard flags.isDisjoint(with: ["torn", "malformed", "orphan", "used-len-exceeds"]),
          let request = (r["request"] as? [String: Any])?["virtio_scsi"] as? [String: Any] else {
        counted += 1
        if flags.contains("torn"), let request = (r["request"] as? [String: Any])?["virtio_scsi"] as? [String: Any] {
            let response = r["virtio_scsi"] as? [String: Any] ?? [:]
            capturedTorn[key(queue: queue, request, response: response["response"], status: response["status"]), default: 0] += 1
        }
        return
    }
    let response = r["virtio_scsi"] as? [String: Any] ?? [:]
    let k = key(queue: queue, request, response: response["response"], status: response["status"])
    if flags.contains("late") { capturedLate[k, default: 0] += 1 } else { captured[k, default: 0] += 1 }
}

// A command completed before the tap attached (its used.idx load) is invisible to it.
var truth: [Key: Int] = [:]
jsonLines(args[1]) { t in
    guard t["kind"] as? String == "cmd", let used = (t["used_ns"] as? NSNumber)?.uint64Value,
          let avail = (t["avail_ns"] as? NSNumber)?.uint64Value, let time = (t["time_ns"] as? NSNumber)?.uint64Value else { return }
    if let attachNs, time &+ used &- avail < attachNs { return }
    let scsi = t["virtio_scsi"] as? [String: Any] ?? [:]
    truth[key(queue: t["queue"] as? Int ?? -1, scsi, response: scsi["response"], status: scsi["status"]), default: 0] += 1
}

let total = truth.values.reduce(0, +)
// Certain captures first; late ones take what is left of each command.
let matchedCertain = truth.reduce(0) { $0 + min($1.value, captured[$1.key] ?? 0) }
let matchedLate = truth.reduce(0) { $0 + min(max(0, $1.value - (captured[$1.key] ?? 0)), capturedLate[$1.key] ?? 0) }
let wrong = captured.reduce(0) { $0 + max(0, $1.value - (truth[$1.key] ?? 0)) }
let late = capturedLate.values.reduce(0, +)
print(total, matchedCertain + matchedLate, counted, wrong, late, late - matchedLate)
// How many torn captures held the right bytes after all: what a sharper verdict could win.
let tornRight = truth.reduce(0) { $0 + min(max(0, $1.value - (captured[$1.key] ?? 0) - (capturedLate[$1.key] ?? 0)), capturedTorn[$1.key] ?? 0) }
for (k, n) in truth {
    let missed = n - min(n, (captured[k] ?? 0) + (capturedLate[k] ?? 0))
    if missed > 0 { missedShort[ShortKey(queue: k.queue, tag: k.tag, opcode: k.opcode, lba: k.lba), default: 0] += missed }
}
let tornRequestsRight = missedShort.reduce(0) { $0 + min($1.value, tornRequests[$1.key] ?? 0) }
FileHandle.standardError.write(Data("torn completions \(capturedTorn.values.reduce(0, +)) (right \(tornRight)), torn requests \(tornRequests.values.reduce(0, +)) (right \(tornRequestsRight))\n".utf8))
