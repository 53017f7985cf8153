import Testing
import VQWire
@testable import VirtioSCSI

// Helpers shared by the message tests: encoding to bytes, catching typed errors, and the
// truncation sweep (every prefix of a message must fail as `truncated` at the field that
// the prefix cuts, with that field's offset).

func encoded(_ encode: (inout ByteWriter) -> Void) -> [UInt8] {
    var w = ByteWriter()
    encode(&w)
    return w.bytes
}

/// The bytes `encode` writes, or nil when it declines (returns false).
func encodedOrNil(_ encode: (inout ByteWriter) -> Bool) -> [UInt8]? {
    var w = ByteWriter()
    return encode(&w) ? w.bytes : nil
}

func decodeError<T>(_ body: () throws(DecodeError) -> T) -> DecodeError? {
    do {
        _ = try body()
        return nil
    } catch {
        return error
    }
}

/// A message layout as (field name, size) in wire order.
typealias Layout = [(name: String, size: Int)]

/// The field a prefix of `length` bytes cuts, and its offset; nil when the layout is whole.
func cutField(_ layout: Layout, prefix length: Int) -> (name: String, offset: Int, size: Int)? {
    var offset = 0
    for (name, size) in layout {
        if offset + size > length { return (name, offset, size) }
        offset += size
    }
    return nil
}

/// Decodes every proper prefix of `bytes` and checks each fails as truncated at the right
/// field, offset, needed and available counts. Returns the number of prefixes checked.
@discardableResult
func expectTruncationSweep(_ bytes: [UInt8], _ layout: Layout,
                           sourceLocation: SourceLocation = #_sourceLocation,
                           _ decode: ([UInt8]) throws(DecodeError) -> Void) -> Int {
    let total = layout.reduce(0) { $0 + $1.size }
    #expect(total <= bytes.count, sourceLocation: sourceLocation)
    for length in 0..<total {
        guard let cut = cutField(layout, prefix: length) else { continue }
        let error = decodeError { () throws(DecodeError) in try decode(Array(bytes[0..<length])) }
        let expected = DecodeError.truncated(cut.name, at: cut.offset, needed: cut.size, available: length - cut.offset)
        #expect(error == expected, "prefix \(length)", sourceLocation: sourceLocation)
    }
    return total
}

/// Bytes of a little-endian integer, for writing vectors by hand.
func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
func zeros(_ n: Int) -> [UInt8] { [UInt8](repeating: 0, count: n) }
