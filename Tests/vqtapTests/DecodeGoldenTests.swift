import Foundation
import Testing

/// Golden outputs of `vqtap decode` for every sample in samples/decode/TESTLIST, in each tier
/// (one line, -v, -T json), as tcpdump's tests/TESTLIST does. Regenerate with
/// VQTAP_REGENERATE=1; a regenerating run fails so that it can never pass by accident.
@Suite struct DecodeGoldenTests {
    struct Sample: CustomTestStringConvertible, Sendable {
        var name: String
        var kind: String
        var options: [String]
        var testDescription: String { name }
    }

    static let dir = VQTapBinary.root.appendingPathComponent("samples/decode")

    static var samples: [Sample] {
        guard let text = try? String(contentsOf: dir.appendingPathComponent("TESTLIST"), encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let words = line.split(separator: " ").map(String.init)
            guard let name = words.first, !name.hasPrefix("#"), words.count >= 2 else { return nil }
            return Sample(name: name, kind: words[1], options: Array(words.dropFirst(2)))
        }
    }

    static let tiers: [(suffix: String, args: [String])] = [(".txt", []), ("-v.txt", ["-v"]), (".json", ["-T", "json"])]

    /// stdout, then stderr and the exit status when there are any: what a user sees.
    static func transcript(_ r: VQTapRun) -> String {
        var s = r.stdout
        if !r.stderr.isEmpty || r.status != 0 { s += "--- stderr\n\(r.stderr)--- exit \(r.status)\n" }
        return s
    }

    @Test func testlistIsNotEmpty() {
        #expect(Self.samples.count >= 40)
    }

    @Test(arguments: samples)
    func golden(_ sample: Sample) throws {
        let input = try String(contentsOf: Self.dir.appendingPathComponent("\(sample.name).hex"), encoding: .utf8)
        let regenerate = ProcessInfo.processInfo.environment["VQTAP_REGENERATE"] != nil
        for tier in Self.tiers {
            let run = try VQTapBinary.run(["decode", "--kind", sample.kind] + sample.options + tier.args + ["-"], stdin: input)
            let got = Self.transcript(run)
            let file = Self.dir.appendingPathComponent("expected/\(sample.name)\(tier.suffix)")
            if regenerate {
                try got.write(to: file, atomically: true, encoding: .utf8)
                Issue.record("regenerated \(file.lastPathComponent); rerun without VQTAP_REGENERATE")
                continue
            }
            let want = try? String(contentsOf: file, encoding: .utf8)
            #expect(got == want, "\(sample.name)\(tier.suffix) differs from its golden file")
        }
    }

    @Test func everyJSONLineParses() throws {
        for sample in Self.samples {
            let file = Self.dir.appendingPathComponent("expected/\(sample.name).json")
            guard let text = try? String(contentsOf: file, encoding: .utf8) else { continue }
            let line = text.split(separator: "\n").first.map(String.init) ?? ""
            if line.hasPrefix("---") { continue }
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["kind"] as? String == sample.kind, "\(sample.name).json")
        }
    }
}
