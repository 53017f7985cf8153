import Testing

@Suite struct VersionTests {
    @Test func versionNamesVqtapAndItsLibraries() throws {
        let r = try VQTapBinary.run(["--version"])
        #expect(r.status == 0)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines.first?.hasPrefix("vqtap version ") == true)
        #expect(lines.dropFirst().first?.hasPrefix("libpcap version 1.") == true)
        #expect(lines.last?.hasPrefix("ncurses 6.") == true)
    }
}
