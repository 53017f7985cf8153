// swift-tools-version:6.0
// vqtap: packet capture and protocol analyzer for virtqueue traffic.
// Module layout and the one-way dependency rule: see DESIGN.md ("Modules").
import PackageDescription

// The tap's poll path is optimised even in debug builds: a debug poll loop is too slow to
// copy a real guest's chains before they are reused (QEMU integration test, issue 7).
let pollPath: [SwiftSetting] = [.unsafeFlags(["-O"], .when(configuration: .debug))]

let package = Package(
    name: "vqtap",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "vqtap", targets: ["vqtap"]),
        .executable(name: "vqtap-pcap-bench", targets: ["vqtap-pcap-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // System libraries, from Debian's -dev packages (the Makefile installs them).
        .systemLibrary(name: "CPcap", pkgConfig: "libpcap",
                       providers: [.apt(["libpcap-dev"])]),
        .systemLibrary(name: "CNcurses", pkgConfig: "ncursesw",
                       providers: [.apt(["libncurses-dev"])]),

        // Our own C (DESIGN.md rule 11): SIGBUS guard for mappings that may shrink, acquire
        // loads on mapped memory, CPU pinning, clocks.
        .target(name: "CVQSys"),
        // The minimal C poller the tap's completeness is measured against (benchmarks/tap).
        .target(name: "CTapAnchor"),

        // Bounded byte access and the field tree every decoder fills.
        .target(name: "VQWire", swiftSettings: pollPath),
        // Split virtqueue layout, descriptor chain walker, guest memory, device layout.
        .target(name: "VirtioRing", dependencies: ["VQWire"], swiftSettings: pollPath),
        // The capture record: header + chain snapshot, the unit of every capture.
        .target(name: "VQRecord", dependencies: ["VQWire"], swiftSettings: pollPath),
        // virtio-scsi messages and SCSI (CDB, sense, status, code tables).
        .target(name: "VirtioSCSI", dependencies: ["VQWire", "VQRecord"], swiftSettings: pollPath),
        // The tap: read-only mapping of guest memory, discovery, ring pollers, loss accounting.
        .target(name: "VirtioTap", dependencies: ["VirtioRing", "VQRecord", "VQWire", "CVQSys"], swiftSettings: pollPath),
        // pcapng writing (our own blocks) and reading pcap/pcapng through libpcap.
        .target(name: "PcapNG", dependencies: ["VQWire", "VQRecord", "CPcap"]),
        // Matching, latency, statistics: listeners of decoded records.
        .target(name: "VQAnalysis", dependencies: [
            "VirtioSCSI", "VQRecord", "VQWire",
            .product(name: "Histogram", package: "hdrhistogram-swift"),
        ]),
        // Sinks: text (tcpdump-like tiers) and JSON lines renderers of field trees and records.
        .target(name: "VQOutput", dependencies: ["VQAnalysis", "PcapNG", "VirtioSCSI", "VQRecord", "VQWire"]),
        // Simulated virtio-scsi driver + device on a shared-memory file (demo, tests, benchmarks).
        .target(name: "VQSim", dependencies: [
            "VirtioRing", "VirtioSCSI", "VQWire", "CVQSys",
            .product(name: "Atomics", package: "swift-atomics"),
        ]),
        // The live view: model snapshot -> views -> screen buffer -> terminal (ncurses).
        .target(name: "VQTUI", dependencies: ["VQAnalysis", "VQOutput", "VirtioSCSI", "VQRecord", "VQWire", "CNcurses", "CVQSys"]),

        .executableTarget(
            name: "vqtap",
            dependencies: [
                "VQWire", "VirtioRing", "VQRecord", "VirtioSCSI", "VirtioTap", "VQAnalysis", "VQOutput", "VQSim", "VQTUI", "PcapNG", "CPcap", "CNcurses", "CVQSys",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // The tap's own ceiling: replays ring states from memory (run by benchmarks/tap).
        .executableTarget(name: "vqtap-tap-replay", dependencies: ["VirtioTap", "VirtioRing", "VQRecord", "CVQSys"],
                          path: "Sources/TapReplay"),
        // The anchor of the tap's completeness bar: the minimal C poller on the same simulator.
        .executableTarget(name: "vqtap-tap-anchor", dependencies: ["CTapAnchor", "CVQSys", "VirtioRing"],
                          path: "Sources/TapAnchor"),
        // benchmarks/pcap: the writer side of the pcapng bars (a driver of the PcapNG writer).
        .executableTarget(name: "vqtap-bench-compare", path: "Sources/BenchCompare"),
        .executableTarget(name: "vqtap-pcap-bench", dependencies: ["PcapNG", "VQRecord", "VQWire", "VirtioSCSI"],
                          path: "Sources/PcapNGBench"),

        .testTarget(name: "VQWireTests", dependencies: ["VQWire"]),
        .testTarget(name: "VQRecordTests", dependencies: ["VQRecord", "VQWire"]),
        // Helpers shared by the test suites (a unix-socket line server for the fake QEMUs).
        .target(name: "TestSupport", path: "Tests/Support"),
        .testTarget(name: "VirtioTapTests", dependencies: ["VirtioTap", "VirtioRing", "VQRecord", "CVQSys", "TestSupport"]),
        .testTarget(name: "VirtioRingTests", dependencies: ["VirtioRing", "VQWire"]),
        .testTarget(name: "VirtioSCSITests", dependencies: ["VirtioSCSI", "VQWire", "VQOutput"]),
        .testTarget(name: "VQSimTests", dependencies: ["VQSim", "VirtioRing", "VirtioSCSI", "VQWire"]),
        .testTarget(name: "VQOutputTests", dependencies: ["VQOutput", "VQAnalysis", "VirtioSCSI", "VQRecord", "VQWire"]),
        .testTarget(name: "VQAnalysisTests", dependencies: ["VQAnalysis", "VirtioSCSI", "VQRecord", "VQWire"]),
        .testTarget(name: "VQTUITests", dependencies: ["VQTUI", "VQAnalysis", "VirtioSCSI", "VQRecord", "VQWire"],
                    exclude: ["goldens"]),
        .testTarget(name: "PcapNGTests", dependencies: ["PcapNG", "VQRecord", "VQWire"]),
        .testTarget(name: "vqtapTests", dependencies: ["VQWire", "VQOutput", "VQAnalysis", "VQRecord", "VirtioSCSI", "PcapNG", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
