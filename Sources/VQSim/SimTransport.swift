import Atomics

// What a PCI transport gives driver and device besides the rings (virtio 1.x 4.1.4.3, the
// common configuration structure): the device status register, the queue addresses and the
// feature bits the driver wrote, and the device configuration space (virtio_scsi_config).
// The driver writes addresses and configuration only while the status is 0; its releasing
// store of DRIVER_OK publishes them to the device. There is no other channel.

final class SimTransport: @unchecked Sendable {
    static let acknowledge: UInt8 = 1
    static let driver: UInt8 = 2
    static let driverOK: UInt8 = 4
    static let featuresOK: UInt8 = 8
    static let live: UInt8 = acknowledge | driver | featuresOK | driverOK

    /// The status register; 0 asks the device to reset.
    let status = ManagedAtomic<UInt8>(0)
    /// Bumped by the device each time it finished a reset (the driver's read-back of status 0).
    let resetsDone = ManagedAtomic<UInt64>(0)
    /// Set by the CLI (signal, duration) to end both sides.
    let stop = ManagedAtomic<Bool>(false)

    /// What the device offers (QEMU's virtio-scsi-pci): VERSION_1, INDIRECT_DESC, EVENT_IDX,
    /// HOTPLUG, CHANGE. The driver accepts a subset.
    let deviceFeatures: UInt64 = 1 << 32 | 1 << 28 | 1 << 29 | 1 << 1 | 1 << 2

    // Written by the driver while status is 0, read by the device after DRIVER_OK.
    var places: [RingPlace] = []
    var driverFeatures: UInt64 = 0
    var cdbSize = 32
    var senseSize = 96
}
