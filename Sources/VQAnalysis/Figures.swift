// Figures for tables and screens: durations with three significant digits (`850ns`,
// `12.3us`, `4.56ms`), sizes with 1024-based units, fixed decimals without Foundation.
// (Parsing durations is VQWire's `Units`.)

public enum Figures {
    /// Three significant digits with the largest unit that keeps the number at least 1:
    /// `850ns`, `12.3us`, `4.56ms`, `1.20s`, `2.0m`.
    public static func format(_ ns: UInt64) -> String {
        let v = Double(ns)
        if ns < 1_000 { return "\(ns)ns" }
        if ns < 1_000_000 { return digits(v / 1e3) + "us" }
        if ns < 1_000_000_000 { return digits(v / 1e6) + "ms" }
        if ns < 120_000_000_000 { return digits(v / 1e9) + "s" }
        return digits(v / 60e9) + "m"
    }

    static func digits(_ v: Double) -> String {
        if v >= 100 { return String(Int((v).rounded())) }
        if v >= 10 { return fixed(v, 1) }
        return fixed(v, 2)
    }

    /// `v` with `places` decimals, without Foundation.
    public static func fixed(_ v: Double, _ places: Int) -> String {
        guard v.isFinite else { return "-" }
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        let negative = v < 0
        let scaled = (abs(v) * scale).rounded()
        guard scaled < 9.0e18 else { return negative ? "-inf" : "inf" }
        let n = UInt64(scaled)
        let whole = n / UInt64(scale)
        var s = (negative && n != 0 ? "-" : "") + String(whole)
        if places > 0 {
            var frac = String(n % UInt64(scale))
            while frac.count < places { frac = "0" + frac }
            s += "." + frac
        }
        return s
    }

    /// Bytes with a 1024-based unit: `512B`, `4.0k`, `1.50M`.
    public static func bytes(_ n: UInt64) -> String {
        let v = Double(n)
        if n < 1024 { return "\(n)B" }
        if n < 1 << 20 { return digits(v / 1024) + "k" }
        if n < 1 << 30 { return digits(v / 1048576) + "M" }
        return digits(v / 1073741824) + "G"
    }
}
