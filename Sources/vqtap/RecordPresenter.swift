import VQAnalysis
import VQOutput
import VQRecord

/// Turns capture records into what `capture` and `read` print: one line per record (tcpdump
/// style), more with -v/-vv, or JSON lines. It holds the pairing state (a completion shows
/// its request's key fields and latency), so feed it every record in order. Live capture
/// and file reading share it: the same records print the same way.
struct RecordPresenter {
    var format: OutputFormat
    private var decoder = RecordDecoder()
    private let formatter: RecordFormatter

    init(verbosity: Int, format: OutputFormat) {
        self.format = format
        self.formatter = RecordFormatter(verbosity: verbosity)
    }

    /// The text for one record (possibly several lines), or nil to print nothing.
    mutating func render(_ record: CaptureRecord) -> String? {
        let decoded = decoder.decode(record)
        switch format {
        case .json: return formatter.json(decoded)
        case .text: return formatter.text(decoded)
        }
    }
}
