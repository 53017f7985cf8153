import ArgumentParser
import Foundation
import VirtioTap

// `--qmp SOCKET`: attach to a running QEMU instead of a layout file (vqtap-capture(1)).
// The layouts come from QMP (QEMUWatcher); everything after the attach is the layout path.

struct QMPAttachOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("A QMP socket of a running QEMU (7.2+) with shared guest RAM.", valueName: "socket"))
    var qmp: String?

    @Option(name: .long, help: ArgumentHelp("With --qmp: the virtio-scsi device's id (scsi0) or QOM path.", valueName: "id|path"))
    var device: String?

    @Option(name: .long, help: ArgumentHelp("With --qmp: the guest RAM file to map (e.g. /proc/PID/fd/N of a memfd).", valueName: "path"))
    var memory: String?
}

extension DeviceAttachOptions {
    /// Exactly one of --layout and --qmp (at most one when the command has other sources);
    /// --device and --memory only with --qmp.
    func validateSource(required: Bool = true) throws {
        switch (layout, qemu.qmp) {
        case (nil, nil):
            if required { throw ValidationError("give the device: --layout FILE or --qmp SOCKET") }
            if qemu.device != nil { throw ValidationError("--device needs --qmp") }
            if qemu.memory != nil { throw ValidationError("--memory needs --qmp") }
            if wait || waitTimeout != nil { throw ValidationError("--wait and --wait-timeout need --layout or --qmp") }
        case (_?, _?): throw ValidationError("--layout and --qmp exclude each other")
        case (_?, nil):
            if qemu.device != nil { throw ValidationError("--device needs --qmp") }
            if qemu.memory != nil { throw ValidationError("--memory needs --qmp") }
        case (nil, _?): break
        }
    }

    /// The tap, attached through the layout file or through QMP.
    func makeTap(pollMode: PollMode, snaplen: Int) throws -> LayoutTap {
        var options = tapOptions(pollMode: pollMode, snaplen: snaplen)
        guard let socket = qemu.qmp else { return LayoutTap(options: options) }
        // The QMP thread polls the status every 5 ms (~10% of a QEMU core); the ring loop
        // only looks at what it found.
        options.watchIntervalNs = 1_000_000
        let waitNs = wait ? (waitTimeout.flatMap(DurationText.nanoseconds) ?? UInt64(1e15)) : 0
        let discovery = QEMUDiscoveryOptions(device: qemu.device, memoryPath: qemu.memory,
                                             cdbSize: UInt32(cdbSize ?? 32), senseSize: UInt32(senseSize ?? 96))
        let started = TapClock().now()
        let provider: QMPLayoutProvider
        do {
            provider = try QMPLayoutProvider(socketPath: socket, options: discovery, waitingSeconds: Double(waitNs) / 1e9)
        } catch {
            throw VQTapFailure("--qmp \(socket): \(error)")
        }
        // What remains of --wait-timeout after connecting goes to waiting for DRIVER_OK.
        if let total = options.waitTimeoutNs {
            let spent = TapClock().now() &- started
            options.waitTimeoutNs = total > spent ? total - spent : 0
        }
        return LayoutTap(options: options, provider: provider)
    }
}
