import VQWire

// JSON text without Foundation: one object per line (JSON lines), keys in insertion order so
// that golden outputs are stable. Conventions (DESIGN.md "CLI and output conventions"):
// numbers are JSON numbers, 64-bit identifiers and guest addresses are hex strings, a code
// carries its number and `<key>_name` side by side.

public struct JSONWriter: Sendable {
    public private(set) var text: String = ""
    public init() {}

    public mutating func raw(_ s: String) { text += s }

    public mutating func string(_ s: String) { JSONString.append(s, to: &text) }
}

/// A JSON value assembled from field trees before it is written.
public indirect enum JSONValue: Sendable, Equatable {
    case number(String)
    case string(String)
    case bool(Bool)
    case array([JSONValue])
    case object([(String, JSONValue)])
    case null

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case let (.number(x), .number(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.bool(x), .bool(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case (.null, .null): return true
        default: return false
        }
    }

    public func write(to w: inout JSONWriter) {
        switch self {
        case let .number(n): w.raw(n)
        case let .string(s): w.string(s)
        case let .bool(b): w.raw(b ? "true" : "false")
        case .null: w.raw("null")
        case let .array(items):
            w.raw("[")
            for (i, v) in items.enumerated() {
                if i > 0 { w.raw(",") }
                v.write(to: &w)
            }
            w.raw("]")
        case let .object(members):
            w.raw("{")
            for (i, (k, v)) in members.enumerated() {
                if i > 0 { w.raw(",") }
                w.string(k)
                w.raw(":")
                v.write(to: &w)
            }
            w.raw("}")
        }
    }

    public var text: String {
        var w = JSONWriter()
        write(to: &w)
        return w.text
    }
}
