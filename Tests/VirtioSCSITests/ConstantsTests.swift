import Testing
@testable import VirtioSCSI

@Suite struct ConstantsTests {
    @Test func deviceIDAndDefaultsFollowTheFacts() {
        #expect(VirtioSCSI.deviceID == 8)
        #expect(VirtioSCSI.defaultCDBSize == 32)
        #expect(VirtioSCSI.defaultSenseSize == 96)
    }
}
