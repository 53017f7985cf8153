import VQWire

// virtio-scsi (spec/virtio-scsi-0.9.4.md, Appendix H; virtio-facts.md for what came later).
// Queue roles: 0 controlq, 1 eventq, 2.. request queues.

public enum VirtioSCSI {
    /// Device ID of the SCSI host (the 0.9.4 draft's "7" is a typo; see virtio-facts.md).
    public static let deviceID: UInt32 = 8
    public static let defaultCDBSize = 32
    public static let defaultSenseSize = 96

    public static let protocolField = FieldDef("virtio_scsi", "virtio-scsi", .group)
}
