// Durations, sizes and rates as the CLI takes them (DESIGN.md "CLI and output conventions"):
// durations take units (`500us`, `20ms`, `5s`, `2m`, `1h`; `ns` too; a bare number is
// seconds), sizes take `k`/`M`/`G`/`T` (powers of 1024; a trailing `B` or `iB` is accepted),
// counts take `k`/`M` (powers of 1000). Parsers return nil on anything else, so each option
// can name itself in its one-line error.

public enum Units {
    /// Nanoseconds in a duration such as `500us`, `1.5s`, `2m`; nil if malformed or too large.
    public static func duration(_ text: String) -> UInt64? {
        let s = text.trimmingWhitespace()
        let (number, unit) = splitNumber(s)
        guard let value = Double(number), value >= 0, value.isFinite else { return nil }
        let scale: Double
        switch unit {
        case "": scale = 1e9
        case "ns": scale = 1
        case "us", "µs": scale = 1e3
        case "ms": scale = 1e6
        case "s": scale = 1e9
        case "m", "min": scale = 60e9
        case "h": scale = 3600e9
        default: return nil
        }
        let ns = (value * scale).rounded()
        guard ns < 1.8e19 else { return nil }
        return UInt64(ns)
    }

    /// Bytes in a size such as `4k`, `1M`, `512`, `1.5G`; nil if malformed, fractional bytes or too large.
    public static func size(_ text: String) -> UInt64? {
        let s = text.trimmingWhitespace()
        let (number, unitText) = splitNumber(s)
        var unit = unitText
        if unit.hasSuffix("iB") { unit.removeLast(2) } else if unit.hasSuffix("B") || unit.hasSuffix("b") { unit.removeLast() }
        let scale: Double
        switch unit {
        case "": scale = 1
        case "k", "K": scale = 1024
        case "m", "M": scale = 1024 * 1024
        case "g", "G": scale = 1024 * 1024 * 1024
        case "t", "T": scale = 1024 * 1024 * 1024 * 1024
        default: return nil
        }
        guard let value = Double(number), value >= 0, value.isFinite else { return nil }
        let bytes = value * scale
        guard bytes < 1.8e19, bytes == bytes.rounded() else { return nil }
        return UInt64(bytes)
    }

    /// A count or rate such as `100000`, `100k`, `1.5M` (powers of 1000); nil if malformed.
    public static func count(_ text: String) -> UInt64? {
        let s = text.trimmingWhitespace()
        let (number, unit) = splitNumber(s)
        let scale: Double
        switch unit {
        case "": scale = 1
        case "k", "K": scale = 1e3
        case "m", "M": scale = 1e6
        case "g", "G": scale = 1e9
        default: return nil
        }
        guard let value = Double(number), value >= 0, value.isFinite else { return nil }
        let n = (value * scale).rounded()
        guard n < 1.8e19 else { return nil }
        return UInt64(n)
    }

    /// `80us`, `2ms`, `1.5s`: the largest unit that keeps the number at least 1.
    public static func formatDuration(ns: UInt64) -> String {
        func trim(_ v: Double) -> String {
            let r = (v * 1000).rounded() / 1000
            return r == r.rounded() ? String(Int64(r)) : String(r)
        }
        if ns >= 1_000_000_000 { return trim(Double(ns) / 1e9) + "s" }
        if ns >= 1_000_000 { return trim(Double(ns) / 1e6) + "ms" }
        if ns >= 1_000 { return trim(Double(ns) / 1e3) + "us" }
        return "\(ns)ns"
    }

    /// `512`, `4k`, `1M` when exact, otherwise bytes.
    public static func formatSize(_ bytes: UInt64) -> String {
        let units: [(UInt64, String)] = [(1 << 40, "T"), (1 << 30, "G"), (1 << 20, "M"), (1 << 10, "k")]
        for (scale, name) in units where bytes >= scale && bytes % scale == 0 { return "\(bytes / scale)\(name)" }
        return "\(bytes)"
    }

    private static func splitNumber(_ s: String) -> (String, String) {
        var number = ""
        var rest = Substring(s)
        while let c = rest.first, c.isNumber || c == "." {
            number.append(c)
            rest = rest.dropFirst()
        }
        return (number, String(rest))
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s = s.dropFirst() }
        while let c = s.last, c.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
