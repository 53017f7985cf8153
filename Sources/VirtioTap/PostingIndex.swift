// The latest posting seen for each header buffer (man/vqtap-capture.1, "Torn chains").
//
// A chain's buffers can be rewritten only once the device has returned it and the driver
// has reused them for a later request, which it posts again soon after. So whether a copy
// can still be trusted turns on one question: which later posting, if any, uses the same
// buffer? Linux reuses header buffers per tag and descriptor heads separately, the
// simulator likewise, so the answer is keyed by guest address, not by head.
//
// An open-addressing table of guest address -> (avail index, head). Addresses of request
// and response headers are few (one pair per tag and queue); when a hostile or unusual
// guest fills half the table it is cleared, and a lookup that finds nothing says "unknown",
// which the poller treats as reused.

struct PostingIndex {
    struct Posting: Equatable {
        var availIndex: UInt16
        var head: UInt16
        /// The posting of the buffer before this one, if one was seen: a copy older than it
        /// may hold either of two later requests.
        var previous: UInt16? = nil
    }

    private var keys: [UInt64]
    private var postings: [Posting]
    private var used: [Bool]
    private var count = 0
    private let mask: Int

    /// `capacity` is rounded up to a power of two.
    init(capacity: Int) {
        var c = 16
        while c < capacity { c <<= 1 }
        keys = [UInt64](repeating: 0, count: c)
        postings = [Posting](repeating: Posting(availIndex: 0, head: 0), count: c)
        used = [Bool](repeating: false, count: c)
        mask = c - 1
    }

    @inline(__always)
    private func slot(_ address: UInt64) -> Int {
        Int(truncatingIfNeeded: (address >> 3) &* 0x9E37_79B9_7F4A_7C15 >> 40) & mask
    }

    /// Records that the posting at `availIndex` (head `head`) uses the buffer at `address`.
    @inline(__always)
    mutating func note(_ address: UInt64, availIndex: UInt16, head: UInt16) {
        var s = slot(address)
        while used[s] {
            if keys[s] == address {
                // The same posting noted twice (walked ahead, then in its batch) stays one.
                if postings[s].availIndex != availIndex {
                    postings[s] = Posting(availIndex: availIndex, head: head, previous: postings[s].availIndex)
                }
                return
            }
            s = (s + 1) & mask
        }
        if count >= (mask + 1) / 2 { clear(); s = slot(address) }
        used[s] = true
        keys[s] = address
        postings[s] = Posting(availIndex: availIndex, head: head)
        count += 1
    }

    /// The latest posting that used `address`, or nil when it was forgotten.
    @inline(__always)
    func latest(_ address: UInt64) -> Posting? {
        var s = slot(address)
        while used[s] {
            if keys[s] == address { return postings[s] }
            s = (s + 1) & mask
        }
        return nil
    }

    mutating func clear() {
        for k in used.indices { used[k] = false }
        count = 0
    }
}
