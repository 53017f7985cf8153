import VQWire

// Field trees to indented text, the `-v` tier: one line per field, `Label: value`, children
// indented by four spaces, as tcpdump -v and tshark -V print.

public enum FieldText {
    public static func lines(_ fields: [Field], indent: Int = 0) -> [String] {
        var out: [String] = []
        for f in fields { append(f, depth: indent, into: &out) }
        return out
    }

    private static func append(_ f: Field, depth: Int, into out: inout [String]) {
        let pad = String(repeating: " ", count: depth * 4)
        let text = f.displayText
        out.append(text.isEmpty ? "\(pad)\(f.def.label)" : "\(pad)\(f.def.label): \(text)")
        for c in f.children { append(c, depth: depth + 1, into: &out) }
    }
}
