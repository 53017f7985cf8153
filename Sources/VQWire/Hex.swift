// Hex rendering shared by every output, and the parser of hex typed or pasted by people.

public enum Hex {
    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// `0x1122334455667788`: always 16 digits, for 64-bit ids and addresses.
    public static func u64(_ v: UInt64) -> String { "0x" + padded(v, width: 16) }

    /// `0x2a`: as few digits as needed, at least two.
    public static func short(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return "0x" + (s.count < 2 ? "0" + s : s)
    }

    /// Lower-case hex with zeros on the left up to `width` digits.
    public static func padded(_ v: UInt64, width: Int) -> String {
        let s = String(v, radix: 16)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    /// `01 00 40 05`.
    public static func spaced(_ b: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity(b.count * 3)
        for (i, x) in b.enumerated() {
            if i > 0 { out.append(0x20) }
            out.append(digits[Int(x >> 4)])
            out.append(digits[Int(x & 0xf)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `0100400500000000`.
    public static func compact(_ b: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity(b.count * 2)
        for x in b {
            out.append(digits[Int(x >> 4)])
            out.append(digits[Int(x & 0xf)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// tcpdump -X style lines: `0x0000:  0100 4005 0000 0000 ...  ..@.....`.
    public static func dump(_ b: [UInt8], indent: String = "\t") -> [String] {
        var lines: [String] = []
        var off = 0
        while off < b.count {
            let row = b[off..<min(off + 16, b.count)]
            var hex = ""
            for (i, x) in row.enumerated() {
                if i > 0 && i % 2 == 0 { hex += " " }
                hex += padded(UInt64(x), width: 2)
            }
            let width = 39
            if hex.count < width { hex += String(repeating: " ", count: width - hex.count) }
            let ascii = String(row.map { (0x20...0x7e).contains($0) ? Character(UnicodeScalar($0)) : "." })
            lines.append("\(indent)0x\(padded(UInt64(off), width: 4)):  \(hex)  \(ascii)")
            off += 16
        }
        return lines
    }

    public struct ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        /// 1-based position of the offending character in the input, and the word it is in.
        public let position: Int
        public let word: String
        public let reason: String
        public var description: String { "bad hex input at character \(position) ('\(word)'): \(reason)" }
    }

    /// Bytes typed or pasted by a person: space-separated pairs (`01 00 2a`), one string
    /// (`01002a`), each optionally prefixed `0x`, separated by spaces, tabs, newlines,
    /// commas or colons. A word with an odd number of digits is an error, not a guess.
    /// `#` starts a comment to the end of the line, and an offset column (`0x0010:` or
    /// `00000010:` first on a line, as tcpdump -x and xxd print) is skipped.
    public static func parse(_ text: String) throws(ParseError) -> [UInt8] {
        var out: [UInt8] = []
        let chars = Array(text.utf8)
        var i = 0
        var atLineStart = true
        func isSep(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d || c == 0x2c || c == 0x3a }
        while i < chars.count {
            if chars[i] == 0x23 {
                while i < chars.count && chars[i] != 0x0a { i += 1 }
                continue
            }
            if chars[i] == 0x0a { atLineStart = true }
            if isSep(chars[i]) { i += 1; continue }
            let start = i
            while i < chars.count && !isSep(chars[i]) && chars[i] != 0x23 { i += 1 }
            // An offset column: first on its line, 4+ digits, then ':' and white space
            // (so that colon-separated bytes such as `01:02` stay bytes).
            let isOffsetColumn = atLineStart && i - start >= 4 && i + 1 < chars.count && chars[i] == 0x3a
                && (chars[i + 1] == 0x20 || chars[i + 1] == 0x09)
            atLineStart = false
            if isOffsetColumn { continue }
            var word = Array(chars[start..<i])
            let wordText = String(decoding: word, as: UTF8.self)
            var digitsStart = start
            if word.count >= 2 && word[0] == 0x30 && (word[1] == 0x78 || word[1] == 0x58) {
                word.removeFirst(2)
                digitsStart += 2
                if word.isEmpty {
                    throw ParseError(position: start + 1, word: wordText, reason: "'0x' with no digits")
                }
            }
            var nibbles: [UInt8] = []
            nibbles.reserveCapacity(word.count)
            for (k, c) in word.enumerated() {
                guard let n = nibble(c) else {
                    throw ParseError(position: digitsStart + k + 1, word: wordText, reason: "not a hex digit")
                }
                nibbles.append(n)
            }
            guard nibbles.count % 2 == 0 else {
                throw ParseError(position: start + 1, word: wordText, reason: "odd number of hex digits")
            }
            var k = 0
            while k < nibbles.count {
                out.append(nibbles[k] << 4 | nibbles[k + 1])
                k += 2
            }
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x61...0x66: return c - 0x61 + 10
        case 0x41...0x46: return c - 0x41 + 10
        default: return nil
        }
    }
}
