// The decoded form of a message: a tree of named fields, like Wireshark's protocol tree.
// Decoders fill it; sinks render it (text tiers, JSON lines, later the Lua dissector's field
// table) without looking at bytes again (DESIGN.md, "sinks never re-parse bytes").
//
// Names are Wireshark-style dotted names under our own protocol (`virtio_scsi.cdb.opcode`),
// defined once as `FieldDef` constants and shared by every output (DESIGN.md rule 10).
// A name that has children is a group and carries no value of its own, so that its JSON
// object can nest the children (`virtio_scsi.lun.raw`, `virtio_scsi.lun.target`).

/// How a field's value is typed, for outputs that declare fields ahead of time (the
/// Wireshark dissector, the man page).
public enum FieldType: Sendable, Hashable {
    case group
    case uint(bits: Int)
    /// 64-bit identifiers and guest addresses: hex strings in JSON.
    case hex64
    /// A number with a name (`opcode` + `opcode_name`).
    case code(bits: Int)
    /// A bit mask with the names of the bits set (`flags` + `flags_names`).
    case flags(bits: Int)
    case bool
    case string
    case bytes
    /// Signed integers (latencies that can be negative when clocks disagree).
    case int
}

public struct FieldDef: Sendable, Hashable {
    public let name: String
    public let label: String
    public let type: FieldType

    public init(_ name: String, _ label: String, _ type: FieldType) {
        self.name = name
        self.label = label
        self.type = type
    }

    /// The last component of the dotted name.
    public var key: Substring {
        if let dot = name.lastIndex(of: ".") { return name[name.index(after: dot)...] }
        return name[...]
    }
}

public enum FieldValue: Sendable, Equatable {
    case none
    case uint(UInt64)
    case int(Int64)
    case hex(UInt64)
    case code(UInt64, name: String)
    case flags(UInt64, names: [String])
    case bool(Bool)
    case string(String)
    case bytes([UInt8])
}

public struct Field: Sendable, Equatable {
    public let def: FieldDef
    public var value: FieldValue
    /// What text output shows instead of the default rendering of `value`.
    public var display: String?
    public var children: [Field]

    public init(_ def: FieldDef, _ value: FieldValue, display: String? = nil, children: [Field] = []) {
        self.def = def
        self.value = value
        self.display = display
        self.children = children
    }

    /// A group node.
    public init(group def: FieldDef, display: String? = nil, _ children: [Field]) {
        self.init(def, .none, display: display, children: children)
    }

    public var name: String { def.name }

    /// The text a person reads for this field's value.
    public var displayText: String {
        if let display { return display }
        switch value {
        case .none: return ""
        case let .uint(v): return String(v)
        case let .int(v): return String(v)
        case let .hex(v): return Hex.u64(v)
        case let .code(v, name): return "\(name) (\(Hex.short(v)))"
        case let .flags(v, names):
            return names.isEmpty ? Hex.short(v) : "\(Hex.short(v)) (\(names.joined(separator: ", ")))"
        case let .bool(b): return b ? "yes" : "no"
        case let .string(s): return s
        case let .bytes(b): return b.isEmpty ? "(none)" : Hex.spaced(b)
        }
    }

    /// Depth-first search by full dotted name.
    public func first(named name: String) -> Field? {
        if def.name == name { return self }
        for c in children { if let f = c.first(named: name) { return f } }
        return nil
    }

    /// Every field with this name, depth first.
    public func all(named name: String) -> [Field] {
        var out: [Field] = []
        collect(name, into: &out)
        return out
    }

    private func collect(_ name: String, into out: inout [Field]) {
        if def.name == name { out.append(self) }
        for c in children { c.collect(name, into: &out) }
    }
}

extension Array where Element == Field {
    public func first(named name: String) -> Field? {
        for f in self { if let hit = f.first(named: name) { return hit } }
        return nil
    }
}

/// Builds a field list without ceremony: `var t = FieldList(); t.add(def, .uint(3))`.
public struct FieldList: Sendable {
    public private(set) var fields: [Field] = []
    public init() {}
    public mutating func add(_ def: FieldDef, _ value: FieldValue, display: String? = nil) {
        fields.append(Field(def, value, display: display))
    }
    public mutating func add(_ field: Field) { fields.append(field) }
    public mutating func add(contentsOf f: [Field]) { fields.append(contentsOf: f) }
    public mutating func group(_ def: FieldDef, display: String? = nil, _ build: (inout FieldList) -> Void) {
        var sub = FieldList()
        build(&sub)
        fields.append(Field(group: def, display: display, sub.fields))
    }
}

/// Something decoded that can show itself: a one-line summary in the style of tcpdump and
/// a field tree for `-v` and JSON.
public protocol FieldDescribable {
    /// One line, no trailing newline.
    var summary: String { get }
    /// The full decode.
    var fields: [Field] { get }
}
