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

    func append(_ records: [CaptureRecord]) {
        if records.isEmpty { return }
        shared.withLock { $0.records.append(contentsOf: records) }
    }

    /// Writes what is queued, then returns once the thread has written everything.
    func close() {
        shared.withLock { $0.closing = true }
        while !shared.withLock({ $0.finished }) { usleep(1_000) }
    }

    private func loop() {
        // Lowest priority: on a busy host the poll loop must win the CPU, the lines can wait.
        // (Linux: the nice value of who 0 is the calling thread's alone.)
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19)
        var writer = LineWriter()
        while true {
            let (batch, closing) = shared.withLock { s -> ([CaptureRecord], Bool) in
                let b = s.records
                s.records.removeAll(keepingCapacity: true)
                return (b, s.closing)
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
