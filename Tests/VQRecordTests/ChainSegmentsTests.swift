import Testing
@testable import VQRecord

@Suite struct ChainSegmentsTests {
    static let request = RecordSegment(address: 0x1000, length: 51, flags: 1 | RecordSegment.fromIndirectFlag, bytes: Array(0..<51))
    static let response = RecordSegment(address: 0x2000, length: 108, flags: 3, bytes: [0xaa, 0xbb])
    static let data = RecordSegment(address: 0x3000, length: 512, flags: 2)

    @Test func segmentsComeBackAsTheyWentIn() {
        let chain = ChainSegments([Self.request, Self.response, Self.data])
        #expect(chain.count == 3)
        #expect(Array(chain) == [Self.request, Self.response, Self.data])
        #expect(chain[1].bytes == [0xaa, 0xbb])
        #expect(chain.address(2) == 0x3000)
        #expect(chain.length(0) == 51)
        #expect(chain.flags(0) == 1 | RecordSegment.fromIndirectFlag)
        #expect(chain.isWritable(1) && !chain.isWritable(0))
        #expect(chain.captured(0) == 51 && chain.captured(2) == 0)
        #expect(chain.capturedTotal == 53)
        #expect(chain.withBytes(0) { Array($0.suffix(2)) } == [49, 50])
    }

    @Test func anEmptyChainHasNoStorage() {
        let empty = ChainSegments([])
        #expect(empty.isEmpty && empty.count == 0 && empty.capturedTotal == 0)
        #expect(empty == ChainSegments())
        #expect(ChainSegments(count: 0, byteCapacity: 100) { _ in } == [])
    }

    @Test func equalityComparesEveryFieldAndByte() {
        let a: ChainSegments = [Self.request, Self.response]
        #expect(a == ChainSegments([Self.request, Self.response]))
        var changed = Self.response
        changed.bytes[1] = 0xbc
        #expect(a != [Self.request, changed])
        changed = Self.response
        changed.flags = 2
        #expect(a != [Self.request, changed])
        #expect(a != [Self.request])
    }

    /// A writer never goes past what it was sized for: extra segments and bytes are left out.
    @Test func theWriterKeepsWithinItsCapacity() {
        let bytes: [UInt8] = Array(repeating: 7, count: 10)
        let chain = bytes.withUnsafeBytes { b in
            ChainSegments(count: 2, byteCapacity: 15) { w in
                w.append(address: 1, length: 10, flags: 0, bytes: b)
                w.append(address: 2, length: 10, flags: 0, bytes: b)
                w.append(address: 3, length: 10, flags: 0, bytes: b)
            }
        }
        #expect(chain.count == 2)
        #expect(chain.captured(0) == 10 && chain.captured(1) == 5)
        #expect(chain[1].bytes == Array(repeating: 7, count: 5))
    }

    /// Fewer segments than announced (a walk that stopped): the count is what was written.
    @Test func aShortFillCountsWhatWasWritten() {
        let chain = ChainSegments(count: 4, byteCapacity: 0) { w in w.append(address: 9, length: 1, flags: 2) }
        #expect(chain.count == 1)
        #expect(Array(chain) == [RecordSegment(address: 9, length: 1, flags: 2)])
    }

    @Test func aRecordRoundTripsThroughItsEncoding() throws {
        let record = CaptureRecord(kind: .available, queue: 2, head: 5, transactionID: 7,
                                   body: .chain([Self.request, Self.response, Self.data]), timestampNs: 42)
        let decoded = try CaptureRecord(decoding: record.encoded, timestampNs: 42)
        #expect(decoded == record)
        #expect(decoded.encoded.count == record.encoded.count)
    }
}
