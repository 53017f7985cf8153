import VQWire

// Every field the virtio-scsi message decoders can emit, for outputs that declare fields
// ahead of time (the generated Wireshark Lua dissector, the man page). The SCSI layer
// (`SCSI/`: `virtio_scsi.cdb.*`, `virtio_scsi.sense.*`, data-in groups) keeps its own list;
// the `.raw`/`.error` children listed here are the ones the message decoders add when a
// CDB or sense buffer does not decode.

extension VirtioSCSI {
    public static let allFields: [FieldDef] =
        [protocolField]
        + VirtioSCSILUN.allFields
        + CommandRequest.allFields
        + CommandResponse.allFields
        + ControlRequest.allFields
        + TMFRequest.allFields
        + TMFResponse.allFields
        + ANRequest.allFields
        + ANResponse.allFields
        + VirtioSCSIEvent.allFields
        + VirtioSCSIConfig.allFields
        + [DecodedMessage.trailingField]
        + ChainDecode.allFields
}
