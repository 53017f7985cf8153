// Views draw into a screen buffer, never into the terminal: tests compare buffers as text
// (golden screens), and the terminal code only copies a buffer out (DESIGN.md: the model
// updates separately from drawing, as htop does).

/// What a cell looks like; the terminal maps styles to colours, or to bold/reverse under
/// NO_COLOR.
public enum CellStyle: UInt8, Sendable, CaseIterable {
    case normal, title, tab, tabSelected, header, selected, dim, good, warning, error, bar, key
}

public struct ScreenBuffer: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public private(set) var characters: [Character]
    public private(set) var styles: [CellStyle]

    public init(width: Int, height: Int) {
        self.width = max(0, width)
        self.height = max(0, height)
        characters = Array(repeating: " ", count: self.width * self.height)
        styles = Array(repeating: .normal, count: self.width * self.height)
    }

    /// Writes `text` from (row, column), cut at the right edge (or at `limit` columns).
    public mutating func put(_ row: Int, _ column: Int, _ text: String, _ style: CellStyle = .normal, limit: Int? = nil) {
        guard row >= 0, row < height, column < width else { return }
        let end = min(width, limit.map { column + $0 } ?? width)
        var c = column
        for ch in text {
            if c >= end { break }
            if c >= 0 {
                characters[row * width + c] = ch.isASCII || ch.unicodeScalars.count == 1 ? ch : "?"
                styles[row * width + c] = style
            }
            c += 1
        }
    }

    /// Gives a whole row a style (a title bar, the selected line), keeping its characters.
    public mutating func paint(_ row: Int, _ style: CellStyle, from column: Int = 0, to end: Int? = nil) {
        guard row >= 0, row < height else { return }
        for c in max(0, column)..<min(width, end ?? width) { styles[row * width + c] = style }
    }

    public func character(_ row: Int, _ column: Int) -> Character { characters[row * width + column] }
    public func style(_ row: Int, _ column: Int) -> CellStyle { styles[row * width + column] }

    public func line(_ row: Int) -> String {
        String(characters[(row * width)..<(row * width + width)])
    }

    /// The screen as text: one line per row, trailing blanks removed (the golden form).
    public var text: String {
        (0..<height).map { r -> String in
            var s = Substring(line(r))
            while s.last == " " { s.removeLast() }
            return String(s)
        }.joined(separator: "\n")
    }
}

/// Fixed-width columns for tables.
struct Column {
    var title: String
    var width: Int
    var rightAligned: Bool

    init(_ title: String, _ width: Int, right: Bool = true) {
        self.title = title
        self.width = width
        self.rightAligned = right
    }

    func cell(_ text: String) -> String {
        let t = text.count > width ? String(text.prefix(width - 1)) + "~" : text
        let pad = String(repeating: " ", count: max(0, width - t.count))
        return rightAligned ? pad + t : t + pad
    }
}

func row(_ columns: [Column], _ values: [String]) -> String {
    zip(columns, values).map { $0.cell($1) }.joined(separator: " ")
}
