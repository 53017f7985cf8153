import VQWire
import VirtioSCSI

public enum LuaDissector {
    public static let fileName = "vqtap.lua"
    public static var source: String { "" }
}
