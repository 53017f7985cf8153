import Testing
import VQWire
@testable import VirtioRing

@Suite struct DescriptorTests {
    @Test func roundTripsAndMatchesTheSpecLayout() throws {
        let d = Descriptor(addr: 0x1122_3344_5566_7788, len: 0x100, flags: [.next, .write], next: 7)
        var w = ByteWriter()
        d.encode(into: &w)
        #expect(w.bytes == [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0, 1, 0, 0, 3, 0, 7, 0])
        var r = ByteReader(w.bytes)
        #expect(try Descriptor(decoding: &r) == d)
        #expect(d.flags.names == ["NEXT", "WRITE"])
    }

    @Test func everyPrefixIsTruncated() {
        let bytes = [UInt8](repeating: 0, count: 16)
        for n in 0..<16 {
            var r = ByteReader(Array(bytes[0..<n]))
            #expect(throws: DecodeError.self) { _ = try Descriptor(decoding: &r) }
            do { _ = try Descriptor(decoding: &r) } catch { #expect(error.isTruncated) }
        }
    }
}
