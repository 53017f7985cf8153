import Foundation

// Real QMP answers of QEMU 7.2 (Debian 1:7.2+dfsg-7+deb12u18), q35, TCG, Linux 6.1 guest,
// recorded from scripts/qemu-guest/run. JSON texts are the `return` values (or `error`
// objects) exactly as QEMU sent them; `info mtree -f` keeps its \r\n line ends.

enum QMPFixtures {
    /// The greeting (Debian 12's QEMU).
    static let greeting = #"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}"#

    /// x-query-virtio
    static let xQueryVirtio = #"[{"name": "virtio-scsi", "path": "/machine/peripheral/scsi0/virtio-backend"}]"#

    /// x-query-virtio-status with the Linux 6.1 driver ready (DRIVER_OK).
    static let statusLinuxReady = #"{"device-endian": "little", "bus-name": "scsi0.0", "disable-legacy-check": false, "name": "virtio-scsi", "started": true, "device-id": 8, "backend-features": {"dev-features": [], "transports": []}, "start-on-kick": false, "isr": 1, "broken": false, "status": {"statuses": ["VIRTIO_CONFIG_S_ACKNOWLEDGE: Valid virtio device found", "VIRTIO_CONFIG_S_DRIVER: Guest OS compatible with device", "VIRTIO_CONFIG_S_FEATURES_OK: Feature negotiation complete", "VIRTIO_CONFIG_S_DRIVER_OK: Driver setup and ready"]}, "num-vqs": 3, "guest-features": {"unknown-dev-features": 1099511627776, "dev-features": ["VIRTIO_SCSI_F_CHANGE: Reporting and handling LUN changes supported", "VIRTIO_SCSI_F_HOTPLUG: Reporting and handling hot-plug events supported"], "transports": ["VIRTIO_RING_F_EVENT_IDX: Used & avail. event fields enabled", "VIRTIO_RING_F_INDIRECT_DESC: Indirect descriptors supported", "VIRTIO_F_VERSION_1: Device compliant for v1 spec (legacy)"]}, "host-features": {"unknown-dev-features": 1099511627776, "dev-features": ["VHOST_USER_F_PROTOCOL_FEATURES: Vhost-user protocol features negotiation supported", "VIRTIO_SCSI_F_CHANGE: Reporting and handling LUN changes supported", "VIRTIO_SCSI_F_HOTPLUG: Reporting and handling hot-plug events supported"], "transports": ["VIRTIO_RING_F_EVENT_IDX: Used & avail. event fields enabled", "VIRTIO_RING_F_INDIRECT_DESC: Indirect descriptors supported", "VIRTIO_F_VERSION_1: Device compliant for v1 spec (legacy)", "VIRTIO_F_ANY_LAYOUT: Device accepts arbitrary desc. layouts", "VIRTIO_F_NOTIFY_ON_EMPTY: Notify when device runs out of avail. descs. on VQ"]}, "use-guest-notifier-mask": true, "vm-running": true, "queue-sel": 2, "disabled": false, "vhost-started": false, "use-started": true}"#

    /// x-query-virtio-queue-status queue 0 (controlq), Linux ready.
    static let queue0LinuxReady = #"{"signalled-used": 0, "inuse": 0, "name": "virtio-scsi", "vring-align": 4096, "vring-desc": 46104576, "signalled-used-valid": false, "vring-num-default": 256, "vring-avail": 46108672, "queue-index": 0, "last-avail-idx": 0, "vring-used": 46109248, "used-idx": 0, "shadow-avail-idx": 0, "vring-num": 256}"#

    /// queue 1 (eventq), Linux ready.
    static let queue1LinuxReady = #"{"signalled-used": 0, "inuse": 0, "name": "virtio-scsi", "vring-align": 4096, "vring-desc": 43925504, "signalled-used-valid": false, "vring-num-default": 256, "vring-avail": 43929600, "queue-index": 1, "last-avail-idx": 0, "vring-used": 43930176, "used-idx": 0, "shadow-avail-idx": 0, "vring-num": 256}"#

    /// queue 2 (request0), Linux ready.
    static let queue2LinuxReady = #"{"signalled-used": 328, "inuse": 0, "name": "virtio-scsi", "vring-align": 4096, "vring-desc": 45539328, "signalled-used-valid": true, "vring-num-default": 256, "vring-avail": 45543424, "queue-index": 2, "last-avail-idx": 328, "vring-used": 45544000, "used-idx": 328, "shadow-avail-idx": 328, "vring-num": 256}"#

    /// The error object for queue 3 of a device with num-vqs 3.
    static let queue3Error = #"{"class": "GenericError", "desc": "Invalid virtqueue number 3"}"#

    /// x-query-virtio-status while SeaBIOS drives the device (before the kernel).
    static let statusSeaBIOS = #"{"device-endian": "little", "bus-name": "scsi0.0", "disable-legacy-check": false, "name": "virtio-scsi", "started": true, "device-id": 8, "backend-features": {"dev-features": [], "transports": []}, "start-on-kick": false, "isr": 0, "broken": false, "status": {"statuses": ["VIRTIO_CONFIG_S_ACKNOWLEDGE: Valid virtio device found", "VIRTIO_CONFIG_S_DRIVER: Guest OS compatible with device", "VIRTIO_CONFIG_S_FEATURES_OK: Feature negotiation complete", "VIRTIO_CONFIG_S_DRIVER_OK: Driver setup and ready"]}, "num-vqs": 3, "guest-features": {"dev-features": [], "transports": ["VIRTIO_F_VERSION_1: Device compliant for v1 spec (legacy)"]}, "host-features": {"unknown-dev-features": 1099511627776, "dev-features": ["VHOST_USER_F_PROTOCOL_FEATURES: Vhost-user protocol features negotiation supported", "VIRTIO_SCSI_F_CHANGE: Reporting and handling LUN changes supported", "VIRTIO_SCSI_F_HOTPLUG: Reporting and handling hot-plug events supported"], "transports": ["VIRTIO_RING_F_EVENT_IDX: Used & avail. event fields enabled", "VIRTIO_RING_F_INDIRECT_DESC: Indirect descriptors supported", "VIRTIO_F_VERSION_1: Device compliant for v1 spec (legacy)", "VIRTIO_F_ANY_LAYOUT: Device accepts arbitrary desc. layouts", "VIRTIO_F_NOTIFY_ON_EMPTY: Notify when device runs out of avail. descs. on VQ"]}, "use-guest-notifier-mask": true, "vm-running": true, "queue-sel": 2, "disabled": false, "vhost-started": false, "use-started": true}"#

    /// queue 2 while SeaBIOS drives the device.
    static let queue2SeaBIOS = #"{"signalled-used": 0, "inuse": 0, "name": "virtio-scsi", "vring-align": 4096, "vring-desc": 268292096, "signalled-used-valid": false, "vring-num-default": 256, "vring-avail": 268296192, "queue-index": 2, "last-avail-idx": 3, "vring-used": 268300288, "used-idx": 3, "shadow-avail-idx": 3, "vring-num": 256}"#

    /// x-query-virtio-status before the guest ran (-S): status 0.
    static let statusPaused = #"{"device-endian": "little", "bus-name": "scsi0.0", "disable-legacy-check": false, "name": "virtio-scsi", "started": false, "device-id": 8, "backend-features": {"dev-features": [], "transports": []}, "start-on-kick": false, "isr": 0, "broken": false, "status": {"statuses": []}, "num-vqs": 3, "guest-features": {"dev-features": [], "transports": []}, "host-features": {"unknown-dev-features": 1099511627776, "dev-features": ["VHOST_USER_F_PROTOCOL_FEATURES: Vhost-user protocol features negotiation supported", "VIRTIO_SCSI_F_CHANGE: Reporting and handling LUN changes supported", "VIRTIO_SCSI_F_HOTPLUG: Reporting and handling hot-plug events supported"], "transports": ["VIRTIO_RING_F_EVENT_IDX: Used & avail. event fields enabled", "VIRTIO_RING_F_INDIRECT_DESC: Indirect descriptors supported", "VIRTIO_F_VERSION_1: Device compliant for v1 spec (legacy)", "VIRTIO_F_ANY_LAYOUT: Device accepts arbitrary desc. layouts", "VIRTIO_F_NOTIFY_ON_EMPTY: Notify when device runs out of avail. descs. on VQ"]}, "use-guest-notifier-mask": true, "vm-running": false, "queue-sel": 0, "disabled": false, "vhost-started": false, "use-started": true}"#

    /// queue 2 before the guest ran: no addresses.
    static let queue2Paused = #"{"signalled-used": 0, "inuse": 0, "name": "virtio-scsi", "vring-align": 4096, "vring-desc": 0, "signalled-used-valid": false, "vring-num-default": 256, "vring-avail": 0, "queue-index": 2, "last-avail-idx": 0, "vring-used": 0, "used-idx": 0, "shadow-avail-idx": 0, "vring-num": 256}"#

    /// qom-list /objects with a memory-backend-file.
    static let qomListFile = #"[{"name": "type", "type": "string"}, {"name": "mem", "type": "child<memory-backend-file>"}]"#

    /// qom-list /objects with a memory-backend-memfd.
    static let qomListMemfd = #"[{"name": "type", "type": "string"}, {"name": "mem", "type": "child<memory-backend-memfd>"}]"#

    /// qom-list /objects with plain -m (QEMU's own pc.ram).
    static let qomListPlain = #"[{"name": "type", "type": "string"}, {"name": "pc.ram", "type": "child<memory-backend-ram>"}]"#

    /// qom-get mem-path.
    static let memPath = #""/dev/shm/vqtap-qemu-8205""#

    /// qom-get mem-path on a memfd backend.
    static let memfdMemPathError = #"{"class": "GenericError", "desc": "Property 'memory-backend-memfd.mem-path' not found"}"#

    /// x-query-virtio-status with a path that is no virtio device.
    static let badPathError = #"{"class": "GenericError", "desc": "Path /nope is not a VirtIODevice"}"#

    /// info mtree -f, q35 with 256M on memory-backend-file 'mem'.
    static let mtree256M: String = ##"""
    FlatView #0
     AS "mch", root: bus master container
     AS "ICH9-LPC", root: bus master container
     AS "ICH9-SMB", root: bus master container
     AS "VGA", root: bus master container
     AS "e1000e", root: bus master container
     Root memory region: (none)
      No rendered FlatView

    FlatView #1
     AS "memory", root: system
     AS "cpu-memory-0", root: system
     AS "ich9-ahci", root: bus master container
     AS "virtio-scsi-pci", root: bus master container
     Root memory region: system
      0000000000000000-000000000009ffff (prio 0, ram): mem
      00000000000a0000-00000000000bffff (prio 1, i/o): vga-lowmem
      00000000000c0000-00000000000cafff (prio 0, rom): mem @00000000000c0000
      00000000000cb000-00000000000cdfff (prio 0, ram): mem @00000000000cb000
      00000000000ce000-00000000000e7fff (prio 0, rom): mem @00000000000ce000
      00000000000e8000-00000000000effff (prio 0, ram): mem @00000000000e8000
      00000000000f0000-00000000000fffff (prio 0, rom): mem @00000000000f0000
      0000000000100000-000000000fffffff (prio 0, ram): mem @0000000000100000
      00000000b0000000-00000000bfffffff (prio 0, i/o): pcie-mmcfg-mmio
      00000000fd000000-00000000fdffffff (prio 1, ram): vga.vram
      00000000fe000000-00000000fe000fff (prio 0, i/o): virtio-pci-common-virtio-scsi
      00000000fe001000-00000000fe001fff (prio 0, i/o): virtio-pci-isr-virtio-scsi
      00000000fe002000-00000000fe002fff (prio 0, i/o): virtio-pci-device-virtio-scsi
      00000000fe003000-00000000fe003fff (prio 0, i/o): virtio-pci-notify-virtio-scsi
      00000000feb80000-00000000feb9ffff (prio 1, i/o): e1000e-mmio
      00000000febd0000-00000000febd004f (prio 0, i/o): msix-table
      00000000febd2000-00000000febd2007 (prio 0, i/o): msix-pba
      00000000febd4000-00000000febd417f (prio 0, i/o): edid
      00000000febd4180-00000000febd43ff (prio 1, i/o): vga.mmio @0000000000000180
      00000000febd4400-00000000febd441f (prio 0, i/o): vga ioports remapped
      00000000febd4420-00000000febd44ff (prio 1, i/o): vga.mmio @0000000000000420
      00000000febd4500-00000000febd4515 (prio 0, i/o): bochs dispi interface
      00000000febd4516-00000000febd45ff (prio 1, i/o): vga.mmio @0000000000000516
      00000000febd4600-00000000febd4607 (prio 0, i/o): qemu extended regs
      00000000febd4608-00000000febd4fff (prio 1, i/o): vga.mmio @0000000000000608
      00000000febd5000-00000000febd503f (prio 0, i/o): msix-table
      00000000febd5800-00000000febd5807 (prio 0, i/o): msix-pba
      00000000febd6000-00000000febd6fff (prio 1, i/o): ahci
      00000000fec00000-00000000fec00fff (prio 0, i/o): ioapic
      00000000fed00000-00000000fed003ff (prio 0, i/o): hpet
      00000000fed1c000-00000000fed1ffff (prio 1, i/o): lpc-rcrb-mmio
      00000000fee00000-00000000feefffff (prio 4096, i/o): apic-msi
      00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bios

    FlatView #2
     AS "I/O", root: io
     Root memory region: io
      0000000000000000-0000000000000007 (prio 0, i/o): dma-chan
      0000000000000008-000000000000000f (prio 0, i/o): dma-cont
      0000000000000010-000000000000001f (prio 0, i/o): io @0000000000000010
      0000000000000020-0000000000000021 (prio 0, i/o): pic
      0000000000000022-000000000000003f (prio 0, i/o): io @0000000000000022
      0000000000000040-0000000000000043 (prio 0, i/o): pit
      0000000000000044-000000000000005f (prio 0, i/o): io @0000000000000044
      0000000000000060-0000000000000060 (prio 0, i/o): i8042-data
      0000000000000061-0000000000000061 (prio 0, i/o): pcspk
      0000000000000062-0000000000000063 (prio 0, i/o): io @0000000000000062
      0000000000000064-0000000000000064 (prio 0, i/o): i8042-cmd
      0000000000000065-000000000000006f (prio 0, i/o): io @0000000000000065
      0000000000000070-0000000000000070 (prio 0, i/o): rtc-index
      0000000000000071-0000000000000071 (prio 0, i/o): rtc @0000000000000001
      0000000000000072-000000000000007d (prio 0, i/o): io @0000000000000072
      000000000000007e-000000000000007f (prio 0, i/o): kvmvapic
      0000000000000080-0000000000000080 (prio 0, i/o): ioport80
      0000000000000081-0000000000000083 (prio 0, i/o): dma-page
      0000000000000084-0000000000000086 (prio 0, i/o): io @0000000000000084
      0000000000000087-0000000000000087 (prio 0, i/o): dma-page
      0000000000000088-0000000000000088 (prio 0, i/o): io @0000000000000088
      0000000000000089-000000000000008b (prio 0, i/o): dma-page
      000000000000008c-000000000000008e (prio 0, i/o): io @000000000000008c
      000000000000008f-000000000000008f (prio 0, i/o): dma-page
      0000000000000090-0000000000000091 (prio 0, i/o): io @0000000000000090
      0000000000000092-0000000000000092 (prio 0, i/o): port92
      0000000000000093-000000000000009f (prio 0, i/o): io @0000000000000093
      00000000000000a0-00000000000000a1 (prio 0, i/o): pic
      00000000000000a2-00000000000000b1 (prio 0, i/o): io @00000000000000a2
      00000000000000b2-00000000000000b3 (prio 0, i/o): apm-io
      00000000000000b4-00000000000000bf (prio 0, i/o): io @00000000000000b4
      00000000000000c0-00000000000000cf (prio 0, i/o): dma-chan
      00000000000000d0-00000000000000df (prio 0, i/o): dma-cont
      00000000000000e0-00000000000000ef (prio 0, i/o): io @00000000000000e0
      00000000000000f0-00000000000000f0 (prio 0, i/o): ioportF0
      00000000000000f1-00000000000001cd (prio 0, i/o): io @00000000000000f1
      00000000000001ce-00000000000001d1 (prio 0, i/o): vbe
      00000000000001d2-0000000000000377 (prio 0, i/o): io @00000000000001d2
      0000000000000378-000000000000037f (prio 0, i/o): parallel
      0000000000000380-00000000000003b3 (prio 0, i/o): io @0000000000000380
      00000000000003b4-00000000000003b5 (prio 0, i/o): vga
      00000000000003b6-00000000000003b9 (prio 0, i/o): io @00000000000003b6
      00000000000003ba-00000000000003ba (prio 0, i/o): vga
      00000000000003bb-00000000000003bf (prio 0, i/o): io @00000000000003bb
      00000000000003c0-00000000000003cf (prio 0, i/o): vga
      00000000000003d0-00000000000003d3 (prio 0, i/o): io @00000000000003d0
      00000000000003d4-00000000000003d5 (prio 0, i/o): vga
      00000000000003d6-00000000000003d9 (prio 0, i/o): io @00000000000003d6
      00000000000003da-00000000000003da (prio 0, i/o): vga
      00000000000003db-00000000000003f7 (prio 0, i/o): io @00000000000003db
      00000000000003f8-00000000000003ff (prio 0, i/o): serial
      0000000000000400-00000000000004cf (prio 0, i/o): io @0000000000000400
      00000000000004d0-00000000000004d0 (prio 0, i/o): elcr
      00000000000004d1-00000000000004d1 (prio 0, i/o): elcr
      00000000000004d2-000000000000050f (prio 0, i/o): io @00000000000004d2
      0000000000000510-0000000000000511 (prio 0, i/o): fwcfg
      0000000000000512-0000000000000513 (prio 0, i/o): io @0000000000000512
      0000000000000514-000000000000051b (prio 0, i/o): fwcfg.dma
      000000000000051c-00000000000005ff (prio 0, i/o): io @000000000000051c
      0000000000000600-0000000000000603 (prio 0, i/o): acpi-evt
      0000000000000604-0000000000000605 (prio 0, i/o): acpi-cnt
      0000000000000606-0000000000000607 (prio 0, i/o): io @0000000000000606
      0000000000000608-000000000000060b (prio 0, i/o): acpi-tmr
      000000000000060c-000000000000061f (prio 0, i/o): io @000000000000060c
      0000000000000620-000000000000062f (prio 0, i/o): acpi-gpe0
      0000000000000630-0000000000000637 (prio 0, i/o): acpi-smi
      0000000000000638-000000000000065f (prio 0, i/o): io @0000000000000638
      0000000000000660-000000000000067f (prio 0, i/o): sm-tco
      0000000000000680-00000000000006ff (prio 0, i/o): io @0000000000000680
      0000000000000700-000000000000073f (prio 1, i/o): pm-smbus
      0000000000000740-0000000000000cbf (prio 0, i/o): io @0000000000000740
      0000000000000cc0-0000000000000cd7 (prio 0, i/o): acpi-pci-hotplug
      0000000000000cd8-0000000000000ce3 (prio 0, i/o): acpi-cpu-hotplug
      0000000000000ce4-0000000000000cf7 (prio 0, i/o): io @0000000000000ce4
      0000000000000cf8-0000000000000cf8 (prio 0, i/o): pci-conf-idx
      0000000000000cf9-0000000000000cf9 (prio 1, i/o): lpc-reset-control
      0000000000000cfa-0000000000000cfb (prio 0, i/o): pci-conf-idx @0000000000000002
      0000000000000cfc-0000000000000cff (prio 0, i/o): pci-conf-data
      0000000000000d00-0000000000005657 (prio 0, i/o): io @0000000000000d00
      0000000000005658-0000000000005658 (prio 0, i/o): vmport
      0000000000005659-000000000000bfff (prio 0, i/o): io @0000000000005659
      000000000000c000-000000000000c03f (prio 1, i/o): virtio-pci
      000000000000c040-000000000000c07f (prio 0, i/o): io @000000000000c040
      000000000000c080-000000000000c09f (prio 1, i/o): e1000e-io
      000000000000c0a0-000000000000c0bf (prio 1, i/o): ahci-idp
      000000000000c0c0-000000000000ffff (prio 0, i/o): io @000000000000c0c0

    FlatView #3
     AS "cpu-smm-0", root: memory
     Root memory region: memory
      0000000000000000-00000000000bffff (prio 0, ram): mem
      00000000000c0000-00000000000cafff (prio 0, rom): mem @00000000000c0000
      00000000000cb000-00000000000cdfff (prio 0, ram): mem @00000000000cb000
      00000000000ce000-00000000000e7fff (prio 0, rom): mem @00000000000ce000
      00000000000e8000-00000000000effff (prio 0, ram): mem @00000000000e8000
      00000000000f0000-00000000000fffff (prio 0, rom): mem @00000000000f0000
      0000000000100000-000000000fffffff (prio 0, ram): mem @0000000000100000
      00000000b0000000-00000000bfffffff (prio 0, i/o): pcie-mmcfg-mmio
      00000000fd000000-00000000fdffffff (prio 1, ram): vga.vram
      00000000fe000000-00000000fe000fff (prio 0, i/o): virtio-pci-common-virtio-scsi
      00000000fe001000-00000000fe001fff (prio 0, i/o): virtio-pci-isr-virtio-scsi
      00000000fe002000-00000000fe002fff (prio 0, i/o): virtio-pci-device-virtio-scsi
      00000000fe003000-00000000fe003fff (prio 0, i/o): virtio-pci-notify-virtio-scsi
      00000000feb80000-00000000feb9ffff (prio 1, i/o): e1000e-mmio
      00000000febd0000-00000000febd004f (prio 0, i/o): msix-table
      00000000febd2000-00000000febd2007 (prio 0, i/o): msix-pba
      00000000febd4000-00000000febd417f (prio 0, i/o): edid
      00000000febd4180-00000000febd43ff (prio 1, i/o): vga.mmio @0000000000000180
      00000000febd4400-00000000febd441f (prio 0, i/o): vga ioports remapped
      00000000febd4420-00000000febd44ff (prio 1, i/o): vga.mmio @0000000000000420
      00000000febd4500-00000000febd4515 (prio 0, i/o): bochs dispi interface
      00000000febd4516-00000000febd45ff (prio 1, i/o): vga.mmio @0000000000000516
      00000000febd4600-00000000febd4607 (prio 0, i/o): qemu extended regs
      00000000febd4608-00000000febd4fff (prio 1, i/o): vga.mmio @0000000000000608
      00000000febd5000-00000000febd503f (prio 0, i/o): msix-table
      00000000febd5800-00000000febd5807 (prio 0, i/o): msix-pba
      00000000febd6000-00000000febd6fff (prio 1, i/o): ahci
      00000000fec00000-00000000fec00fff (prio 0, i/o): ioapic
      00000000fed00000-00000000fed003ff (prio 0, i/o): hpet
      00000000fed1c000-00000000fed1ffff (prio 1, i/o): lpc-rcrb-mmio
      00000000fee00000-00000000feefffff (prio 4096, i/o): apic-msi
      00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bios


    """##.replacingOccurrences(of: "\n", with: "\r\n")

    /// info mtree -f, q35 with 4G: RAM above 4 GiB maps to offset 0x80000000.
    static let mtree4G: String = ##"""
    FlatView #0
     AS "mch", root: bus master container
     AS "ICH9-LPC", root: bus master container
     AS "ICH9-SMB", root: bus master container
     AS "VGA", root: bus master container
     AS "e1000e", root: bus master container
     Root memory region: (none)
      No rendered FlatView

    FlatView #1
     AS "memory", root: system
     AS "cpu-memory-0", root: system
     AS "ich9-ahci", root: bus master container
     AS "virtio-scsi-pci", root: bus master container
     Root memory region: system
      0000000000000000-000000000009ffff (prio 0, ram): mem
      00000000000a0000-00000000000bffff (prio 1, i/o): vga-lowmem
      00000000000c0000-00000000000cafff (prio 0, rom): mem @00000000000c0000
      00000000000cb000-00000000000cdfff (prio 0, ram): mem @00000000000cb000
      00000000000ce000-00000000000e7fff (prio 0, rom): mem @00000000000ce000
      00000000000e8000-00000000000effff (prio 0, ram): mem @00000000000e8000
      00000000000f0000-00000000000fffff (prio 0, rom): mem @00000000000f0000
      0000000000100000-000000007fffffff (prio 0, ram): mem @0000000000100000
      00000000b0000000-00000000bfffffff (prio 0, i/o): pcie-mmcfg-mmio
      00000000fd000000-00000000fdffffff (prio 1, ram): vga.vram
      00000000fe000000-00000000fe000fff (prio 0, i/o): virtio-pci-common-virtio-scsi
      00000000fe001000-00000000fe001fff (prio 0, i/o): virtio-pci-isr-virtio-scsi
      00000000fe002000-00000000fe002fff (prio 0, i/o): virtio-pci-device-virtio-scsi
      00000000fe003000-00000000fe003fff (prio 0, i/o): virtio-pci-notify-virtio-scsi
      00000000feb80000-00000000feb9ffff (prio 1, i/o): e1000e-mmio
      00000000febd0000-00000000febd004f (prio 0, i/o): msix-table
      00000000febd2000-00000000febd2007 (prio 0, i/o): msix-pba
      00000000febd4000-00000000febd417f (prio 0, i/o): edid
      00000000febd4180-00000000febd43ff (prio 1, i/o): vga.mmio @0000000000000180
      00000000febd4400-00000000febd441f (prio 0, i/o): vga ioports remapped
      00000000febd4420-00000000febd44ff (prio 1, i/o): vga.mmio @0000000000000420
      00000000febd4500-00000000febd4515 (prio 0, i/o): bochs dispi interface
      00000000febd4516-00000000febd45ff (prio 1, i/o): vga.mmio @0000000000000516
      00000000febd4600-00000000febd4607 (prio 0, i/o): qemu extended regs
      00000000febd4608-00000000febd4fff (prio 1, i/o): vga.mmio @0000000000000608
      00000000febd5000-00000000febd503f (prio 0, i/o): msix-table
      00000000febd5800-00000000febd5807 (prio 0, i/o): msix-pba
      00000000febd6000-00000000febd6fff (prio 1, i/o): ahci
      00000000fec00000-00000000fec00fff (prio 0, i/o): ioapic
      00000000fed00000-00000000fed003ff (prio 0, i/o): hpet
      00000000fed1c000-00000000fed1ffff (prio 1, i/o): lpc-rcrb-mmio
      00000000fee00000-00000000feefffff (prio 4096, i/o): apic-msi
      00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bios
      0000000100000000-000000017fffffff (prio 0, ram): mem @0000000080000000

    FlatView #2
     AS "I/O", root: io
     Root memory region: io
      0000000000000000-0000000000000007 (prio 0, i/o): dma-chan
      0000000000000008-000000000000000f (prio 0, i/o): dma-cont
      0000000000000010-000000000000001f (prio 0, i/o): io @0000000000000010
      0000000000000020-0000000000000021 (prio 0, i/o): pic
      0000000000000022-000000000000003f (prio 0, i/o): io @0000000000000022
      0000000000000040-0000000000000043 (prio 0, i/o): pit
      0000000000000044-000000000000005f (prio 0, i/o): io @0000000000000044
      0000000000000060-0000000000000060 (prio 0, i/o): i8042-data
      0000000000000061-0000000000000061 (prio 0, i/o): pcspk
      0000000000000062-0000000000000063 (prio 0, i/o): io @0000000000000062
      0000000000000064-0000000000000064 (prio 0, i/o): i8042-cmd
      0000000000000065-000000000000006f (prio 0, i/o): io @0000000000000065
      0000000000000070-0000000000000070 (prio 0, i/o): rtc-index
      0000000000000071-0000000000000071 (prio 0, i/o): rtc @0000000000000001
      0000000000000072-000000000000007d (prio 0, i/o): io @0000000000000072
      000000000000007e-000000000000007f (prio 0, i/o): kvmvapic
      0000000000000080-0000000000000080 (prio 0, i/o): ioport80
      0000000000000081-0000000000000083 (prio 0, i/o): dma-page
      0000000000000084-0000000000000086 (prio 0, i/o): io @0000000000000084
      0000000000000087-0000000000000087 (prio 0, i/o): dma-page
      0000000000000088-0000000000000088 (prio 0, i/o): io @0000000000000088
      0000000000000089-000000000000008b (prio 0, i/o): dma-page
      000000000000008c-000000000000008e (prio 0, i/o): io @000000000000008c
      000000000000008f-000000000000008f (prio 0, i/o): dma-page
      0000000000000090-0000000000000091 (prio 0, i/o): io @0000000000000090
      0000000000000092-0000000000000092 (prio 0, i/o): port92
      0000000000000093-000000000000009f (prio 0, i/o): io @0000000000000093
      00000000000000a0-00000000000000a1 (prio 0, i/o): pic
      00000000000000a2-00000000000000b1 (prio 0, i/o): io @00000000000000a2
      00000000000000b2-00000000000000b3 (prio 0, i/o): apm-io
      00000000000000b4-00000000000000bf (prio 0, i/o): io @00000000000000b4
      00000000000000c0-00000000000000cf (prio 0, i/o): dma-chan
      00000000000000d0-00000000000000df (prio 0, i/o): dma-cont
      00000000000000e0-00000000000000ef (prio 0, i/o): io @00000000000000e0
      00000000000000f0-00000000000000f0 (prio 0, i/o): ioportF0
      00000000000000f1-00000000000001cd (prio 0, i/o): io @00000000000000f1
      00000000000001ce-00000000000001d1 (prio 0, i/o): vbe
      00000000000001d2-0000000000000377 (prio 0, i/o): io @00000000000001d2
      0000000000000378-000000000000037f (prio 0, i/o): parallel
      0000000000000380-00000000000003b3 (prio 0, i/o): io @0000000000000380
      00000000000003b4-00000000000003b5 (prio 0, i/o): vga
      00000000000003b6-00000000000003b9 (prio 0, i/o): io @00000000000003b6
      00000000000003ba-00000000000003ba (prio 0, i/o): vga
      00000000000003bb-00000000000003bf (prio 0, i/o): io @00000000000003bb
      00000000000003c0-00000000000003cf (prio 0, i/o): vga
      00000000000003d0-00000000000003d3 (prio 0, i/o): io @00000000000003d0
      00000000000003d4-00000000000003d5 (prio 0, i/o): vga
      00000000000003d6-00000000000003d9 (prio 0, i/o): io @00000000000003d6
      00000000000003da-00000000000003da (prio 0, i/o): vga
      00000000000003db-00000000000003f7 (prio 0, i/o): io @00000000000003db
      00000000000003f8-00000000000003ff (prio 0, i/o): serial
      0000000000000400-00000000000004cf (prio 0, i/o): io @0000000000000400
      00000000000004d0-00000000000004d0 (prio 0, i/o): elcr
      00000000000004d1-00000000000004d1 (prio 0, i/o): elcr
      00000000000004d2-000000000000050f (prio 0, i/o): io @00000000000004d2
      0000000000000510-0000000000000511 (prio 0, i/o): fwcfg
      0000000000000512-0000000000000513 (prio 0, i/o): io @0000000000000512
      0000000000000514-000000000000051b (prio 0, i/o): fwcfg.dma
      000000000000051c-00000000000005ff (prio 0, i/o): io @000000000000051c
      0000000000000600-0000000000000603 (prio 0, i/o): acpi-evt
      0000000000000604-0000000000000605 (prio 0, i/o): acpi-cnt
      0000000000000606-0000000000000607 (prio 0, i/o): io @0000000000000606
      0000000000000608-000000000000060b (prio 0, i/o): acpi-tmr
      000000000000060c-000000000000061f (prio 0, i/o): io @000000000000060c
      0000000000000620-000000000000062f (prio 0, i/o): acpi-gpe0
      0000000000000630-0000000000000637 (prio 0, i/o): acpi-smi
      0000000000000638-000000000000065f (prio 0, i/o): io @0000000000000638
      0000000000000660-000000000000067f (prio 0, i/o): sm-tco
      0000000000000680-00000000000006ff (prio 0, i/o): io @0000000000000680
      0000000000000700-000000000000073f (prio 1, i/o): pm-smbus
      0000000000000740-0000000000000cbf (prio 0, i/o): io @0000000000000740
      0000000000000cc0-0000000000000cd7 (prio 0, i/o): acpi-pci-hotplug
      0000000000000cd8-0000000000000cf7 (prio 0, i/o): acpi-cpu-hotplug
      0000000000000cf8-0000000000000cf8 (prio 0, i/o): pci-conf-idx
      0000000000000cf9-0000000000000cf9 (prio 1, i/o): lpc-reset-control
      0000000000000cfa-0000000000000cfb (prio 0, i/o): pci-conf-idx @0000000000000002
      0000000000000cfc-0000000000000cff (prio 0, i/o): pci-conf-data
      0000000000000d00-0000000000005657 (prio 0, i/o): io @0000000000000d00
      0000000000005658-0000000000005658 (prio 0, i/o): vmport
      0000000000005659-000000000000bfff (prio 0, i/o): io @0000000000005659
      000000000000c000-000000000000c03f (prio 1, i/o): virtio-pci
      000000000000c040-000000000000c07f (prio 0, i/o): io @000000000000c040
      000000000000c080-000000000000c09f (prio 1, i/o): e1000e-io
      000000000000c0a0-000000000000c0bf (prio 1, i/o): ahci-idp
      000000000000c0c0-000000000000ffff (prio 0, i/o): io @000000000000c0c0

    FlatView #3
     AS "cpu-smm-0", root: memory
     Root memory region: memory
      0000000000000000-00000000000bffff (prio 0, ram): mem
      00000000000c0000-00000000000cafff (prio 0, rom): mem @00000000000c0000
      00000000000cb000-00000000000cdfff (prio 0, ram): mem @00000000000cb000
      00000000000ce000-00000000000e7fff (prio 0, rom): mem @00000000000ce000
      00000000000e8000-00000000000effff (prio 0, ram): mem @00000000000e8000
      00000000000f0000-00000000000fffff (prio 0, rom): mem @00000000000f0000
      0000000000100000-000000007fffffff (prio 0, ram): mem @0000000000100000
      00000000b0000000-00000000bfffffff (prio 0, i/o): pcie-mmcfg-mmio
      00000000fd000000-00000000fdffffff (prio 1, ram): vga.vram
      00000000fe000000-00000000fe000fff (prio 0, i/o): virtio-pci-common-virtio-scsi
      00000000fe001000-00000000fe001fff (prio 0, i/o): virtio-pci-isr-virtio-scsi
      00000000fe002000-00000000fe002fff (prio 0, i/o): virtio-pci-device-virtio-scsi
      00000000fe003000-00000000fe003fff (prio 0, i/o): virtio-pci-notify-virtio-scsi
      00000000feb80000-00000000feb9ffff (prio 1, i/o): e1000e-mmio
      00000000febd0000-00000000febd004f (prio 0, i/o): msix-table
      00000000febd2000-00000000febd2007 (prio 0, i/o): msix-pba
      00000000febd4000-00000000febd417f (prio 0, i/o): edid
      00000000febd4180-00000000febd43ff (prio 1, i/o): vga.mmio @0000000000000180
      00000000febd4400-00000000febd441f (prio 0, i/o): vga ioports remapped
      00000000febd4420-00000000febd44ff (prio 1, i/o): vga.mmio @0000000000000420
      00000000febd4500-00000000febd4515 (prio 0, i/o): bochs dispi interface
      00000000febd4516-00000000febd45ff (prio 1, i/o): vga.mmio @0000000000000516
      00000000febd4600-00000000febd4607 (prio 0, i/o): qemu extended regs
      00000000febd4608-00000000febd4fff (prio 1, i/o): vga.mmio @0000000000000608
      00000000febd5000-00000000febd503f (prio 0, i/o): msix-table
      00000000febd5800-00000000febd5807 (prio 0, i/o): msix-pba
      00000000febd6000-00000000febd6fff (prio 1, i/o): ahci
      00000000fec00000-00000000fec00fff (prio 0, i/o): ioapic
      00000000fed00000-00000000fed003ff (prio 0, i/o): hpet
      00000000fed1c000-00000000fed1ffff (prio 1, i/o): lpc-rcrb-mmio
      00000000fee00000-00000000feefffff (prio 4096, i/o): apic-msi
      00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bios
      0000000100000000-000000017fffffff (prio 0, ram): mem @0000000080000000


    """##.replacingOccurrences(of: "\n", with: "\r\n")

    /// info mtree -f, q35 with plain -m 256M (pc.ram).
    static let mtreePlain: String = ##"""
    FlatView #0
     AS "memory", root: system
     AS "cpu-memory-0", root: system
     Root memory region: system
      0000000000000000-000000000009ffff (prio 0, ram): pc.ram
      00000000000a0000-00000000000bffff (prio 1, i/o): vga-lowmem
      00000000000c0000-00000000000dffff (prio 1, rom): pc.rom
      00000000000e0000-00000000000fffff (prio 0, rom): pc.bios @0000000000020000
      0000000000100000-000000000fffffff (prio 0, ram): pc.ram @0000000000100000
      00000000fec00000-00000000fec00fff (prio 0, i/o): ioapic
      00000000fed00000-00000000fed003ff (prio 0, i/o): hpet
      00000000fee00000-00000000feefffff (prio 4096, i/o): apic-msi
      00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bios

    FlatView #1
     AS "I/O", root: io
     Root memory region: io
      0000000000000000-0000000000000007 (prio 0, i/o): dma-chan
      0000000000000008-000000000000000f (prio 0, i/o): dma-cont
      0000000000000010-000000000000001f (prio 0, i/o): io @0000000000000010
      0000000000000020-0000000000000021 (prio 0, i/o): pic
      0000000000000022-000000000000003f (prio 0, i/o): io @0000000000000022
      0000000000000040-0000000000000043 (prio 0, i/o): pit
      0000000000000044-000000000000005f (prio 0, i/o): io @0000000000000044
      0000000000000060-0000000000000060 (prio 0, i/o): i8042-data
      0000000000000061-0000000000000061 (prio 0, i/o): pcspk
      0000000000000062-0000000000000063 (prio 0, i/o): io @0000000000000062
      0000000000000064-0000000000000064 (prio 0, i/o): i8042-cmd
      0000000000000065-000000000000006f (prio 0, i/o): io @0000000000000065
      0000000000000070-0000000000000070 (prio 0, i/o): rtc-index
      0000000000000071-0000000000000071 (prio 0, i/o): rtc @0000000000000001
      0000000000000072-000000000000007d (prio 0, i/o): io @0000000000000072
      000000000000007e-000000000000007f (prio 0, i/o): kvmvapic
      0000000000000080-0000000000000080 (prio 0, i/o): ioport80
      0000000000000081-0000000000000083 (prio 0, i/o): dma-page
      0000000000000084-0000000000000086 (prio 0, i/o): io @0000000000000084
      0000000000000087-0000000000000087 (prio 0, i/o): dma-page
      0000000000000088-0000000000000088 (prio 0, i/o): io @0000000000000088
      0000000000000089-000000000000008b (prio 0, i/o): dma-page
      000000000000008c-000000000000008e (prio 0, i/o): io @000000000000008c
      000000000000008f-000000000000008f (prio 0, i/o): dma-page
      0000000000000090-0000000000000091 (prio 0, i/o): io @0000000000000090
      0000000000000092-0000000000000092 (prio 0, i/o): port92
      0000000000000093-000000000000009f (prio 0, i/o): io @0000000000000093
      00000000000000a0-00000000000000a1 (prio 0, i/o): pic
      00000000000000a2-00000000000000b1 (prio 0, i/o): io @00000000000000a2
      00000000000000b2-00000000000000b3 (prio 0, i/o): apm-io
      00000000000000b4-00000000000000bf (prio 0, i/o): io @00000000000000b4
      00000000000000c0-00000000000000cf (prio 0, i/o): dma-chan
      00000000000000d0-00000000000000df (prio 0, i/o): dma-cont
      00000000000000e0-00000000000000ef (prio 0, i/o): io @00000000000000e0
      00000000000000f0-00000000000000f0 (prio 0, i/o): ioportF0
      00000000000000f1-00000000000001cd (prio 0, i/o): io @00000000000000f1
      00000000000001ce-00000000000001d1 (prio 0, i/o): vbe
      00000000000001d2-0000000000000377 (prio 0, i/o): io @00000000000001d2
      0000000000000378-000000000000037f (prio 0, i/o): parallel
      0000000000000380-00000000000003b3 (prio 0, i/o): io @0000000000000380
      00000000000003b4-00000000000003b5 (prio 0, i/o): vga
      00000000000003b6-00000000000003b9 (prio 0, i/o): io @00000000000003b6
      00000000000003ba-00000000000003ba (prio 0, i/o): vga
      00000000000003bb-00000000000003bf (prio 0, i/o): io @00000000000003bb
      00000000000003c0-00000000000003cf (prio 0, i/o): vga
      00000000000003d0-00000000000003d3 (prio 0, i/o): io @00000000000003d0
      00000000000003d4-00000000000003d5 (prio 0, i/o): vga
      00000000000003d6-00000000000003d9 (prio 0, i/o): io @00000000000003d6
      00000000000003da-00000000000003da (prio 0, i/o): vga
      00000000000003db-00000000000003f7 (prio 0, i/o): io @00000000000003db
      00000000000003f8-00000000000003ff (prio 0, i/o): serial
      0000000000000400-00000000000004cf (prio 0, i/o): io @0000000000000400
      00000000000004d0-00000000000004d0 (prio 0, i/o): elcr
      00000000000004d1-00000000000004d1 (prio 0, i/o): elcr
      00000000000004d2-000000000000050f (prio 0, i/o): io @00000000000004d2
      0000000000000510-0000000000000511 (prio 0, i/o): fwcfg
      0000000000000512-0000000000000513 (prio 0, i/o): io @0000000000000512
      0000000000000514-000000000000051b (prio 0, i/o): fwcfg.dma
      000000000000051c-0000000000000cbf (prio 0, i/o): io @000000000000051c
      0000000000000cc0-0000000000000cd7 (prio 0, i/o): acpi-pci-hotplug
      0000000000000cd8-0000000000000cf7 (prio 0, i/o): acpi-cpu-hotplug
      0000000000000cf8-0000000000000cf8 (prio 0, i/o): pci-conf-idx
      0000000000000cf9-0000000000000cf9 (prio 1, i/o): lpc-reset-control
      0000000000000cfa-0000000000000cfb (prio 0, i/o): pci-conf-idx @0000000000000002
      0000000000000cfc-0000000000000cff (prio 0, i/o): pci-conf-data
      0000000000000d00-0000000000005657 (prio 0, i/o): io @0000000000000d00
      0000000000005658-0000000000005658 (prio 0, i/o): vmport
      0000000000005659-000000000000ffff (prio 0, i/o): io @0000000000005659

    FlatView #2
     AS "cpu-smm-0", root: memory
     Root memory region: memory
      0000000000000000-000000000009ffff (prio 0, ram): pc.ram
      00000000000a0000-00000000000bffff (prio 1, i/o): vga-lowmem
      00000000000c0000-00000000000dffff (prio 1, rom): pc.rom
      00000000000e0000-00000000000fffff (prio 0, rom): pc.bios @0000000000020000
      0000000000100000-000000000fffffff (prio 0, ram): pc.ram @0000000000100000
      00000000fec00000-00000000fec00fff (prio 0, i/o): ioapic
      00000000fed00000-00000000fed003ff (prio 0, i/o): hpet
      00000000fee00000-00000000feefffff (prio 4096, i/o): apic-msi
      00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bios

    FlatView #3
     AS "mch", root: bus master container
     AS "ICH9-LPC", root: bus master container
     AS "ich9-ahci", root: bus master container
     AS "ICH9-SMB", root: bus master container
     AS "VGA", root: bus master container
     AS "e1000e", root: bus master container
     AS "virtio-scsi-pci", root: bus master container
     Root memory region: (none)
      No rendered FlatView


    """##.replacingOccurrences(of: "\n", with: "\r\n")
}
