import Testing
@testable import VQWire

@Suite struct HexTests {
    @Test(arguments: [
        ("01 00 40 05", [UInt8]([1, 0, 0x40, 5])),
        ("01004005", [1, 0, 0x40, 5]),
        ("0x01 0x00 0X40 0x05", [1, 0, 0x40, 5]),
        ("0x01004005", [1, 0, 0x40, 5]),
        ("01,00:40\n\t05\r\n", [1, 0, 0x40, 5]),
        ("AbCd", [0xab, 0xcd]),
        ("# a comment\n01 02 # trailing\n03", [1, 2, 3]),
        ("0x0000:  0100 4005\n0x0010:  2a00", [1, 0, 0x40, 5, 0x2a, 0]),
        ("00000000: 0102\n00000010: 0304", [1, 2, 3, 4]),
        ("01:02:03", [1, 2, 3]),
        ("", []),
    ])
    func parsesWhatPeoplePaste(input: String, expected: [UInt8]) throws {
        #expect(try Hex.parse(input) == expected)
    }

    @Test func rejectsWithPosition() {
        #expect(throws: Hex.ParseError(position: 5, word: "0g", reason: "not a hex digit")) { _ = try Hex.parse("01 0g") }
        #expect(throws: Hex.ParseError(position: 4, word: "123", reason: "odd number of hex digits")) { _ = try Hex.parse("01 123") }
        #expect(throws: Hex.ParseError(position: 1, word: "0x", reason: "'0x' with no digits")) { _ = try Hex.parse("0x 01") }
    }

    @Test func formats() {
        #expect(Hex.u64(0x2a) == "0x000000000000002a")
        #expect(Hex.short(0xa) == "0x0a")
        #expect(Hex.short(0x1f4) == "0x1f4")
        #expect(Hex.spaced([1, 0xab]) == "01 ab")
        #expect(Hex.compact([1, 0xab]) == "01ab")
        #expect(Hex.dump(Array(0x41...0x52)) == [
            "\t0x0000:  4142 4344 4546 4748 494a 4b4c 4d4e 4f50  ABCDEFGHIJKLMNOP",
            "\t0x0010:  5152                                     QR",
        ])
    }

    @Test func flagNamesListUnknownBits() {
        #expect(Naming.flagNames(0x13, [(1, "A"), (2, "B")]) == ["A", "B", "unknown(0x10)"])
        #expect(Naming.unknown(0x1f) == "unknown(0x1f)")
    }
}
