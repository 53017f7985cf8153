import VQWire

// Field names of decoded sense data (`virtio_scsi.sense.*`), defined once (DESIGN.md rule 10).
// The ASC/ASCQ text travels as its own string field, `asc_text`, beside the `asc` and `ascq`
// numbers.

extension SenseData {
    public enum Fields {
        public static let responseCode = FieldDef("virtio_scsi.sense.response_code", "Response code", .code(bits: 7))
        public static let valid = FieldDef("virtio_scsi.sense.valid", "Information valid", .bool)
        public static let filemark = FieldDef("virtio_scsi.sense.filemark", "Filemark", .bool)
        public static let eom = FieldDef("virtio_scsi.sense.eom", "End of medium (EOM)", .bool)
        public static let ili = FieldDef("virtio_scsi.sense.ili", "Incorrect length (ILI)", .bool)
        public static let sdatOverflow = FieldDef("virtio_scsi.sense.sdat_ovfl", "Sense data overflow", .bool)
        public static let information = FieldDef("virtio_scsi.sense.information", "Information", .uint(bits: 64))
        public static let additionalLength = FieldDef("virtio_scsi.sense.additional_length", "Additional sense length", .uint(bits: 8))
        public static let commandSpecific = FieldDef("virtio_scsi.sense.command_specific", "Command-specific information", .uint(bits: 64))
        public static let asc = FieldDef("virtio_scsi.sense.asc", "Additional sense code", .uint(bits: 8))
        public static let ascq = FieldDef("virtio_scsi.sense.ascq", "Additional sense code qualifier", .uint(bits: 8))
        public static let ascText = FieldDef("virtio_scsi.sense.asc_text", "Additional sense", .string)
        public static let fru = FieldDef("virtio_scsi.sense.fru", "Field replaceable unit code", .uint(bits: 8))
        public static let additionalBytes = FieldDef("virtio_scsi.sense.additional_bytes", "Additional sense bytes", .bytes)
        public static let vendorBytes = FieldDef("virtio_scsi.sense.vendor_bytes", "Vendor specific sense", .bytes)
        public static let truncated = FieldDef("virtio_scsi.sense.truncated", "Truncated", .string)

        public static let senseKeySpecific = FieldDef("virtio_scsi.sense.sks", "Sense key specific", .group)
        public static let sksv = FieldDef("virtio_scsi.sense.sks.sksv", "Valid (SKSV)", .bool)
        public static let commandData = FieldDef("virtio_scsi.sense.sks.cd", "In the CDB (C/D)", .bool)
        public static let segmentDescriptor = FieldDef("virtio_scsi.sense.sks.sd", "In a segment descriptor (SD)", .bool)
        public static let bitPointerValid = FieldDef("virtio_scsi.sense.sks.bpv", "Bit pointer valid (BPV)", .bool)
        public static let bitPointer = FieldDef("virtio_scsi.sense.sks.bit_pointer", "Bit pointer", .uint(bits: 3))
        public static let fieldPointer = FieldDef("virtio_scsi.sense.sks.field_pointer", "Field pointer", .uint(bits: 16))
        public static let actualRetryCount = FieldDef("virtio_scsi.sense.sks.actual_retry_count", "Actual retry count", .uint(bits: 16))
        public static let progress = FieldDef("virtio_scsi.sense.sks.progress", "Progress indication", .uint(bits: 16))
        public static let overflow = FieldDef("virtio_scsi.sense.sks.overflow", "Unit attention queue overflow", .bool)
        public static let senseKeySpecificRaw = FieldDef("virtio_scsi.sense.sks.value", "Sense key specific value", .uint(bits: 23))

        public static let descriptor = FieldDef("virtio_scsi.sense.descriptor", "Descriptor", .group)
        public static let descriptorType = FieldDef("virtio_scsi.sense.descriptor.type", "Type", .code(bits: 8))
        public static let descriptorLength = FieldDef("virtio_scsi.sense.descriptor.length", "Additional length", .uint(bits: 8))
        public static let descriptorData = FieldDef("virtio_scsi.sense.descriptor.data", "Data", .bytes)
        public static let ataExtend = FieldDef("virtio_scsi.sense.descriptor.extend", "EXTEND", .bool)
        public static let ataError = FieldDef("virtio_scsi.sense.descriptor.error", "ATA error", .uint(bits: 8))
        public static let ataCount = FieldDef("virtio_scsi.sense.descriptor.count", "ATA count", .uint(bits: 16))
        public static let ataLBA = FieldDef("virtio_scsi.sense.descriptor.lba", "ATA LBA", .uint(bits: 48))
        public static let ataDevice = FieldDef("virtio_scsi.sense.descriptor.device", "ATA device", .uint(bits: 8))
        public static let ataStatus = FieldDef("virtio_scsi.sense.descriptor.status", "ATA status", .uint(bits: 8))
    }
}
