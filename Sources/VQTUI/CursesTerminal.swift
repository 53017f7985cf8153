import CNcurses
#if canImport(Glibc)
import Glibc
#endif

// The only code that talks to the terminal: it copies a screen buffer out through ncurses
// (which sends only the cells that changed: no flicker), reads keys, and restores the
// terminal on every way out (quit, SIGINT, SIGTERM, an error, exit()).

/// Set by SIGINT, SIGTERM and SIGHUP; the loops poll it.
nonisolated(unsafe) private var receivedSignal: Int32 = 0

public enum TerminalSignals {
    /// Installs handlers that only record the signal; the run loops notice and return.
    public static func install() {
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGINT, SIGTERM, SIGHUP] {
            signal(s) { receivedSignal = $0 }
            sigaddset(&set, s)
        }
        // A parent may hand them to us blocked (Foundation's Process does).
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    public static var received: Int32 { receivedSignal }
}

nonisolated(unsafe) private var cursesActive = false

public final class CursesTerminal {
    // ncurses attribute bits (curses.h NCURSES_BITS; the macros do not import).
    static let attrReverse: Int32 = 1 << 18
    static let attrDim: Int32 = 1 << 20
    static let attrBold: Int32 = 1 << 21
    static func colorPair(_ n: Int32) -> Int32 { n << 8 }

    private let colours: Bool
    private var attributes: [Int32]
    /// stdscr, as initscr returned it (the global is not concurrency-safe to read).
    private let window: UnsafeMutablePointer<WINDOW>?

    /// `monochrome` (or NO_COLOR in the environment) keeps to bold, dim and reverse.
    public init(monochrome: Bool = false) {
        setlocale(LC_ALL, "")
        window = initscr()
        cursesActive = true
        atexit { if cursesActive { endwin() } }
        cbreak()
        noecho()
        nonl()
        keypad(window, true)
        curs_set(0)
        set_escdelay(25)
        let noColor = getenv("NO_COLOR").map { $0.pointee != 0 } ?? false
        colours = !monochrome && !noColor && has_colors()
        if colours {
            start_color()
            use_default_colors()
        }
        attributes = Array(repeating: 0, count: CellStyle.allCases.count)
        for style in CellStyle.allCases { attributes[Int(style.rawValue)] = attribute(style) }
        TerminalSignals.install()
    }

    private func attribute(_ style: CellStyle) -> Int32 {
        // (foreground, background, attributes); -1 is the terminal's default colour.
        let spec: (Int16, Int16, Int32, Int32)
        switch style {
        case .normal: spec = (-1, -1, 0, 0)
        case .title: spec = (Int16(COLOR_BLACK), Int16(COLOR_CYAN), Self.attrBold, Self.attrReverse | Self.attrBold)
        case .tab: spec = (-1, -1, 0, 0)
        case .tabSelected: spec = (Int16(COLOR_BLACK), Int16(COLOR_GREEN), Self.attrBold, Self.attrReverse)
        case .header: spec = (Int16(COLOR_BLACK), Int16(COLOR_GREEN), 0, Self.attrReverse)
        case .selected: spec = (Int16(COLOR_BLACK), Int16(COLOR_CYAN), 0, Self.attrReverse)
        case .dim: spec = (Int16(COLOR_BLUE), -1, Self.attrBold, Self.attrDim)
        case .good: spec = (Int16(COLOR_GREEN), -1, 0, 0)
        case .warning: spec = (Int16(COLOR_YELLOW), -1, Self.attrBold, Self.attrBold)
        case .error: spec = (Int16(COLOR_RED), -1, Self.attrBold, Self.attrBold)
        case .bar: spec = (Int16(COLOR_CYAN), -1, Self.attrBold, 0)
        case .key: spec = (Int16(COLOR_BLACK), Int16(COLOR_CYAN), 0, Self.attrReverse)
        }
        guard colours else { return spec.3 }
        let pair = Int16(style.rawValue) + 1
        init_pair(pair, spec.0, spec.1)
        return Self.colorPair(Int32(pair)) | spec.2
    }

    public var size: (width: Int, height: Int) {
        (Int(getmaxx(window)), Int(getmaxy(window)))
    }

    /// Copies the buffer to the screen, one run of equal style at a time.
    public func draw(_ b: ScreenBuffer) {
        let (w, h) = size
        for r in 0..<min(h, b.height) {
            var c = 0
            let width = min(w, b.width)
            while c < width {
                let style = b.style(r, c)
                var run = ""
                var e = c
                // The bottom-right cell cannot be written without scrolling on some terminals.
                while e < width, b.style(r, e) == style, !(r == h - 1 && e == w - 1) {
                    run.append(b.character(r, e))
                    e += 1
                }
                if e == c { break }
                attrset(attributes[Int(style.rawValue)])
                mvaddstr(Int32(r), Int32(c), run)
                c = e
            }
        }
        attrset(0)
        refresh()
    }

    /// The next key, waiting at most `timeoutMs`; nil when none came.
    public func readKey(timeoutMs: Int32) -> TopKey? {
        wtimeout(window, timeoutMs)
        let k = wgetch(window)
        switch k {
        case ERR: return nil
        case 9: return .tab
        case 10, 13, 0o527: return .enter
        case 27: return .escape
        case 8, 127, 0o407: return .backspace
        case 0o402: return .down
        case 0o403: return .up
        case 0o404: return .left
        case 0o405: return .right
        case 0o406: return .home
        case 0o550: return .end
        case 0o522: return .pageDown
        case 0o523: return .pageUp
        case 0o541: return .backTab
        case 0o632: return .resize
        case 32...126:
            return .character(Character(Unicode.Scalar(UInt8(k))))
        default: return nil
        }
    }

    public func restore() {
        guard cursesActive else { return }
        cursesActive = false
        endwin()
    }

    deinit { restore() }
}
