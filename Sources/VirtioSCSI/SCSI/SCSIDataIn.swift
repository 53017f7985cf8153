import VQWire

// CONTRACT SKELETON (replaced by the SCSI work): decoding of captured data-in.

public enum SCSIDataIn {
    /// The decoded data-in of INQUIRY, READ CAPACITY (10/16) and REPORT LUNS, as one group
    /// field (`virtio_scsi.inquiry`, `virtio_scsi.read_capacity`, `virtio_scsi.report_luns`),
    /// or nil for other commands. Partial data (snaplen, allocation length) decodes as far
    /// as it goes.
    public static func decode(command: SCSICommand, data: [UInt8]) -> Field? { nil }
}
