// Shared by every code table (DESIGN.md rule 2: an unknown code is a value that prints as
// `unknown(0x1f)`).

public enum Naming {
    public static func unknown(_ raw: UInt64) -> String { "unknown(\(Hex.short(raw)))" }

    /// The names of the bits of `value` that `table` knows, then `unknown(0x...)` for the rest.
    public static func flagNames(_ value: UInt64, _ table: [(bit: UInt64, name: String)]) -> [String] {
        var names: [String] = []
        var rest = value
        for (bit, name) in table where value & bit != 0 {
            names.append(name)
            rest &= ~bit
        }
        if rest != 0 { names.append(unknown(rest)) }
        return names
    }
}
