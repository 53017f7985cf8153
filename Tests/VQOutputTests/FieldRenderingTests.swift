import Testing
import VQWire
@testable import VQOutput

@Suite struct FieldRenderingTests {
    static let proto = FieldDef("virtio_scsi", "virtio-scsi", .group)
    static let id = FieldDef("virtio_scsi.id", "Tag", .hex64)
    static let lun = FieldDef("virtio_scsi.lun", "LUN", .group)
    static let target = FieldDef("virtio_scsi.lun.target", "Target", .uint(bits: 8))
    static let lunNumber = FieldDef("virtio_scsi.lun.lun", "LUN", .uint(bits: 16))
    static let opcode = FieldDef("virtio_scsi.cdb.opcode", "Opcode", .code(bits: 8))
    static let entry = FieldDef("virtio_scsi.report_luns.lun", "LUN entry", .group)
    static let entryTarget = FieldDef("virtio_scsi.report_luns.lun.target", "Target", .uint(bits: 8))

    var tree: [Field] {
        [Field(group: Self.proto, [
            Field(Self.id, .hex(0x1122_3344_5566_7788)),
            Field(group: Self.lun, display: "0:5", [Field(Self.target, .uint(0)), Field(Self.lunNumber, .uint(5))]),
            Field(Self.opcode, .code(0x28, name: "Read(10)")),
            Field(group: Self.entry, [Field(Self.entryTarget, .uint(1))]),
            Field(group: Self.entry, [Field(Self.entryTarget, .uint(2))]),
        ])]
    }

    @Test func jsonNestsByDottedNameAndRepeatsBecomeArrays() {
        #expect(FieldJSON.line(tree, extra: [("kind", .string("cmd-req"))]) ==
            #"{"kind":"cmd-req","virtio_scsi":{"id":"0x1122334455667788","lun":{"target":0,"lun":5},"cdb":{"opcode":40,"opcode_name":"Read(10)"},"report_luns":{"lun":[{"target":1},{"target":2}]}}}"#)
    }

    @Test func jsonEscapesStrings() {
        var w = JSONWriter()
        w.string("a\"b\\c\n\u{1}")
        #expect(w.text == #""a\"b\\c\n\u0001""#)
    }

    @Test func textIndentsChildren() {
        #expect(FieldText.lines(tree) == [
            "virtio-scsi",
            "    Tag: 0x1122334455667788",
            "    LUN: 0:5",
            "        Target: 0",
            "        LUN: 5",
            "    Opcode: Read(10) (0x28)",
            "    LUN entry",
            "        Target: 1",
            "    LUN entry",
            "        Target: 2",
        ])
    }
}
