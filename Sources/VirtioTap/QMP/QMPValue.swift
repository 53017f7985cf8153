import Foundation
import VQWire

// A JSON value as QMP sends it. Decoded with Foundation's JSONDecoder so that integers stay
// exact (guest addresses are decimal numbers up to 2^64) and booleans never pass for numbers.

public indirect enum QMPValue: Sendable, Equatable, Codable, CustomStringConvertible {
    case null
    case bool(Bool)
    case int(Int64)
    /// Only for integers above Int64.max.
    case uint(UInt64)
    case double(Double)
    case string(String)
    case array([QMPValue])
    case object([String: QMPValue])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .int(i) }
        else if let u = try? c.decode(UInt64.self) { self = .uint(u) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([QMPValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: QMPValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .uint(let u): try c.encode(u)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// Parses one JSON text; nil if it is not JSON. JSONSerialization is ~100x faster
    /// than a Decodable walk, which matters at hundreds of status polls a second.
    public static func parse(_ data: Data) -> QMPValue? {
        guard let any = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else { return nil }
        return QMPValue(foundation: any)
    }

    /// Converts JSONSerialization's output. Booleans are NSNumbers of type `c`; integers
    /// above Int64.max come as `Q`.
    init?(foundation any: Any) {
        switch any {
        case is NSNull: self = .null
        case let s as String: self = .string(s)
        case let n as NSNumber:
            switch String(cString: n.objCType) {
            case "c", "B": self = .bool(n.boolValue)
            case "d", "f": self = .double(n.doubleValue)
            case "Q": self = n.uint64Value <= UInt64(Int64.max) ? .int(n.int64Value) : .uint(n.uint64Value)
            default: self = .int(n.int64Value)
            }
        case let a as [Any]:
            var out: [QMPValue] = []
            out.reserveCapacity(a.count)
            for e in a {
                guard let v = QMPValue(foundation: e) else { return nil }
                out.append(v)
            }
            self = .array(out)
        case let o as [String: Any]:
            var out: [String: QMPValue] = [:]
            for (k, e) in o {
                guard let v = QMPValue(foundation: e) else { return nil }
                out[k] = v
            }
            self = .object(out)
        default:
            return nil
        }
    }

    /// Compact JSON with sorted keys (commands on the wire, test fixtures).
    public var json: String {
        var out = ""
        write(into: &out)
        return out
    }

    private func write(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .uint(let u): out += String(u)
        case .double(let d): out += d.isFinite ? "\(d)" : "null"
        case .string(let s): JSONString.append(s, to: &out)
        case .array(let a):
            out += "["
            for (i, e) in a.enumerated() {
                if i > 0 { out += "," }
                e.write(into: &out)
            }
            out += "]"
        case .object(let o):
            out += "{"
            for (i, k) in o.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                JSONString.append(k, to: &out)
                out += ":"
                o[k]?.write(into: &out)
            }
            out += "}"
        }
    }


    public var description: String { json }

    public subscript(key: String) -> QMPValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var bool: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var array: [QMPValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var object: [String: QMPValue]? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// A non-negative integer (addresses, sizes, indices).
    public var uint64: UInt64? {
        switch self {
        case .int(let i): return i >= 0 ? UInt64(i) : nil
        case .uint(let u): return u
        default: return nil
        }
    }

    public var int64: Int64? {
        switch self {
        case .int(let i): return i
        case .uint(let u): return u <= UInt64(Int64.max) ? Int64(u) : nil
        default: return nil
        }
    }
}

extension QMPValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByDictionaryLiteral, ExpressibleByArrayLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(dictionaryLiteral elements: (String, QMPValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
    public init(arrayLiteral elements: QMPValue...) { self = .array(elements) }
}
