import CVQSys
import Foundation
import Synchronization
import VQRecord

// Renders and writes records on a thread of its own, so the polling loop only copies chains.
// A debug build spends ~50 us rendering one JSON record, while a Linux guest scanning its
// targets issues a request every 40 us on one recycled head: rendering inline made the
// poller fall behind and tear most chains (measured on QEMU, issue 7).

final class RecordWriterThread: @unchecked Sendable {
    private struct Shared {
        var records: [CaptureRecord] = []
        var closing = false
        var finished = false
    }
    private let shared = Mutex(Shared())
    /// Touched only by the thread once it started.
    private var presenter: RecordPresenter

    init(presenter: RecordPresenter) {
        self.presenter = presenter
        let t = Thread { [self] in loop() }
        t.name = "vqtap-writer"
        t.start()
    }

    /// Records the lock was busy for; only the polling thread touches them.
    private var waiting: [CaptureRecord] = []

    /// Never blocks: the writer runs at nice 19 and may be preempted holding the lock, so
    /// when it is busy the records wait here for the next call.
    func append(_ records: [CaptureRecord]) {
        waiting.append(contentsOf: records)
        if waiting.isEmpty { return }
        let handed = shared.withLockIfAvailable { s in
            if s.records.isEmpty { swap(&s.records, &waiting) } else { s.records.append(contentsOf: waiting) }
        }
        if handed != nil { waiting.removeAll(keepingCapacity: true) }
    }

    /// Writes what is queued, then returns once the thread has written everything.
    func close() {
        shared.withLock { s in
            s.records.append(contentsOf: waiting)
            s.closing = true
        }
        waiting.removeAll()
        while !shared.withLock({ $0.finished }) { usleep(1_000) }
    }

    private func loop() {
        // Lowest priority: on a busy host the poll loop must win the CPU, the lines can wait.
        // (Linux: the nice value of who 0 is the calling thread's alone.)
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19)
        var writer = LineWriter()
        while true {
            var batch: [CaptureRecord] = []
            let closing = shared.withLock { s -> Bool in
                swap(&batch, &s.records)
                return s.closing
            }
            for r in batch { if let text = presenter.render(r) { writer.append(text) } }
            if batch.isEmpty {
                writer.flush()
                if closing { break }
                usleep(2_000)
            } else {
                writer.flushIfDue()
            }
        }
        writer.flush()
        shared.withLock { $0.finished = true }
    }
}
