import Testing
import VQOutput
import VQWire
@testable import VirtioSCSI

/// SplitMix64: a small deterministic generator, so every run feeds the same bytes.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

@Suite struct SCSIFuzzTests {
    /// Random bytes whose first bytes are often ones the decoders branch on.
    static func sample(_ rng: inout SplitMix64, heads: [[UInt8]]) -> [UInt8] {
        let length = Int.random(in: 0...48, using: &rng)
        var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
        if Bool.random(using: &rng), let head = heads.randomElement(using: &rng) {
            for (i, b) in head.enumerated() where i < bytes.count { bytes[i] = b }
        }
        return bytes
    }

    /// Renders the fields the way the outputs do, so a bad tree would show up too.
    static func render(_ fields: [Field]) -> Int {
        FieldText.lines(fields).count + FieldJSON.line(fields).count
    }

    @Test func twentyThousandRandomInputsNeverTrap() {
        var rng = SplitMix64(state: 0x5eed_5c51)
        let opcodes: [UInt8] = [0x00, 0x03, 0x08, 0x0a, 0x12, 0x15, 0x1a, 0x1b, 0x1e, 0x25, 0x28, 0x2a, 0x2e, 0x2f, 0x35,
                                0x41, 0x42, 0x48, 0x4d, 0x55, 0x5a, 0x5e, 0x5f, 0x7f, 0x85, 0x88, 0x8a, 0x8f, 0x91, 0x93,
                                0x9e, 0x9f, 0xa0, 0xa1, 0xa3, 0xa8, 0xaa, 0xaf, 0xc0]
        let cdbHeads = opcodes.map { [$0] } + [[0x7f, 0, 0, 0, 0, 0, 0, 0x18, 0, 0x09], [0x7f, 0, 0, 0, 0, 0, 0, 0x18, 0, 0x0d],
                                             [0x9e, 0x10], [0x9e, 0x12], [0xa3, 0x0c], [0x12, 0x01]]
        let senseHeads: [[UInt8]] = [[0x70], [0x71], [0xf0], [0x72], [0x73], [0x7f], [0x72, 5, 0x24, 0, 0, 0, 0, 40, 0x02, 0x06],
                                     [0x72, 5, 0x24, 0, 0, 0, 0, 40, 0x09, 0x0c], [0x70, 0, 5, 0, 0, 0, 0, 10]]
        let dataCommands: [[UInt8]] = [
            SCSICommand.inquiry(alloc: 96), SCSICommand.inquiry(evpd: true, page: 0, alloc: 255),
            SCSICommand.inquiry(evpd: true, page: 0x80, alloc: 255), SCSICommand.inquiry(evpd: true, page: 0x83, alloc: 255),
            SCSICommand.inquiry(evpd: true, page: 0xb0, alloc: 255), SCSICommand.inquiry(evpd: true, page: 0xb1, alloc: 255),
            SCSICommand.readCapacity10(), SCSICommand.readCapacity16(), SCSICommand.reportLuns(alloc: 4096),
        ]
        let commands = dataCommands.compactMap { try? SCSICommand(decoding: $0) }
        let dataHeads: [[UInt8]] = [[0, 0, 0, 8], [0, 0x83, 0, 40, 0x02, 0x01, 0, 20], [0, 0xb0, 0, 0x3c], [0, 0, 0, 16, 0, 0, 0, 0]]
        var decoded = (cdb: 0, sense: 0, data: 0), failed = (cdb: 0, sense: 0)
        var rendered = 0
        for _ in 0..<20_000 {
            let cdb = Self.sample(&rng, heads: cdbHeads)
            do {
                let c = try SCSICommand(decoding: cdb)
                #expect(c.cdbLength.map { $0 <= cdb.count } ?? true, "\(Hex.spaced(cdb))")
                #expect(!c.summary.isEmpty)
                rendered += Self.render(c.fields)
                decoded.cdb += 1
            } catch {
                #expect(error.isTruncated || error.isMalformed, "\(error)")
                failed.cdb += 1
            }
            let sense = Self.sample(&rng, heads: senseHeads)
            do {
                let s = try SenseData(decoding: sense)
                #expect(!s.summary.isEmpty)
                rendered += Self.render(s.fields)
                decoded.sense += 1
            } catch {
                #expect(error.isTruncated || error.isMalformed, "\(error)")
                failed.sense += 1
            }
            let data = Self.sample(&rng, heads: dataHeads)
            if let command = commands.randomElement(using: &rng), let f = SCSIDataIn.decode(command: command, data: data) {
                rendered += Self.render([f])
                decoded.data += 1
            }
        }
        // The inputs reached the decoders' insides, not only their first checks.
        #expect(decoded.cdb + failed.cdb == 20_000 && decoded.sense + failed.sense == 20_000)
        #expect(decoded.cdb > 2_000 && decoded.sense > 1_000 && decoded.data > 15_000)
        #expect(rendered > 0)
    }
}

@Suite struct SCSIEveryOpcodeTests {
    @Test func everyOpcodeAndEveryPrefixDecodesOrFailsCleanly() {
        var decoded = 0
        for opcode in 0...255 {
            for fill: UInt8 in [0x00, 0xff] {
                let cdb = [UInt8(opcode)] + Array(repeating: fill, count: 31)
                for length in 0...cdb.count {
                    do {
                        let c = try SCSICommand(decoding: Array(cdb[0..<length]))
                        #expect(c.opcode == UInt8(opcode))
                        #expect(c.cdbLength.map { $0 <= length } ?? true)
                        decoded += 1
                    } catch {
                        #expect(error.isTruncated || error.isMalformed, "\(error)")
                    }
                }
            }
        }
        #expect(decoded > 256 * 2 * 10)
    }
}
