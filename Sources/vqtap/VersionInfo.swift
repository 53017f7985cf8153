import CNcurses
import CPcap

// `vqtap --version`, in the manner of `tcpdump --version`: our version, then the versions of
// the libraries that read captures and draw the live view.

enum VersionInfo {
    static let version = "0.1.0"

    static var text: String {
        var lines = ["vqtap version \(version)"]
        if let p = pcap_lib_version() { lines.append(String(cString: p)) }
        if let c = curses_version() { lines.append(String(cString: c)) }
        return lines.joined(separator: "\n")
    }
}
