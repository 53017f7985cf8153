import VQWire

// Field trees to nested JSON: the path of every value is its dotted field name, so
// `jq .virtio_scsi.cdb.opcode` works. Siblings with the same key become an array (REPORT
// LUNS entries, sense descriptors, chain segments).

public enum FieldJSON {
    /// One JSON object for a list of top-level fields, plus `extra` members first
    /// (`time_ns`, `kind`, ...).
    public static func object(_ fields: [Field], extra: [(String, JSONValue)] = []) -> JSONValue {
        var builder = ObjectBuilder()
        for (k, v) in extra { builder.set([k], v) }
        for f in fields { insert(f, parentName: "", into: &builder) }
        return builder.value
    }

    public static func line(_ fields: [Field], extra: [(String, JSONValue)] = []) -> String {
        object(fields, extra: extra).text
    }

    private static func relativePath(_ name: String, parent: String) -> [String] {
        var rel = Substring(name)
        if !parent.isEmpty, name.hasPrefix(parent + ".") { rel = name.dropFirst(parent.count + 1) }
        return rel.split(separator: ".").map(String.init)
    }

    private static func insert(_ f: Field, parentName: String, into b: inout ObjectBuilder) {
        let path = relativePath(f.name, parent: parentName)
        guard let last = path.last else { return }
        let prefix = Array(path.dropLast())
        if !f.children.isEmpty || f.def.type == .group {
            var child = ObjectBuilder()
            for c in f.children { insert(c, parentName: f.name, into: &child) }
            b.append(prefix + [last], child.value)
            return
        }
        for (k, v) in members(of: f, key: last) { b.append(prefix + [k], v) }
    }

    /// The JSON members of one leaf: a code gives `key` and `key_name`.
    static func members(of f: Field, key: String) -> [(String, JSONValue)] {
        switch f.value {
        case .none: return [(key, .null)]
        case let .uint(v): return [(key, .number(String(v)))]
        case let .int(v): return [(key, .number(String(v)))]
        case let .hex(v): return [(key, .string(Hex.u64(v)))]
        case let .code(v, name): return [(key, .number(String(v))), (key + "_name", .string(name))]
        case let .flags(v, names): return [(key, .number(String(v))), (key + "_names", .array(names.map { .string($0) }))]
        case let .bool(v): return [(key, .bool(v))]
        case let .string(s): return [(key, .string(s))]
        case let .bytes(b): return [(key, .string(Hex.compact(b)))]
        }
    }
}

/// An ordered JSON object under construction. `append` turns a repeated key into an array.
struct ObjectBuilder {
    private var members: [(String, Node)] = []

    private indirect enum Node {
        case leaf(JSONValue)
        case object(ObjectBuilder)
        case repeated([JSONValue])
    }

    var value: JSONValue {
        .object(members.map { k, n in
            switch n {
            case let .leaf(v): return (k, v)
            case let .object(o): return (k, o.value)
            case let .repeated(vs): return (k, .array(vs))
            }
        })
    }

    /// Sets a value at a path, replacing what was there.
    mutating func set(_ path: [String], _ v: JSONValue) { put(path[...], v, repeatKey: false) }

    /// Adds a value at a path; if the last key already holds a value, the two become an array.
    mutating func append(_ path: [String], _ v: JSONValue) { put(path[...], v, repeatKey: true) }

    private mutating func put(_ path: ArraySlice<String>, _ v: JSONValue, repeatKey: Bool) {
        guard let key = path.first else { return }
        let idx = members.firstIndex { $0.0 == key }
        if path.count == 1 {
            guard let i = idx else { members.append((key, .leaf(v))); return }
            guard repeatKey else { members[i].1 = .leaf(v); return }
            switch members[i].1 {
            case let .leaf(old): members[i].1 = .repeated([old, v])
            case let .repeated(vs): members[i].1 = .repeated(vs + [v])
            case let .object(o): members[i].1 = .repeated([o.value, v])
            }
            return
        }
        var sub = ObjectBuilder()
        if let i = idx, case let .object(o) = members[i].1 { sub = o }
        sub.put(path.dropFirst(), v, repeatKey: repeatKey)
        if let i = idx, case .object = members[i].1 { members[i].1 = .object(sub) } else { members.append((key, .object(sub))) }
    }
}
