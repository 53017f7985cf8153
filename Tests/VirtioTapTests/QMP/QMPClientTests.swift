import Foundation
import Testing
@testable import VirtioTap

@Suite(.serialized) struct QMPClientTests {
    func withServer(_ handler: @escaping FakeQMPServer.Handler, greeting: String = QMPFixtures.greeting,
                    _ body: (FakeQMPServer) throws -> Void) throws {
        let server = try FakeQMPServer(greeting: greeting, handler: handler)
        defer { server.stop() }
        try body(server)
    }

    func error(_ body: () throws -> Void) -> QMPError? {
        do { try body() } catch let e as QMPError { return e } catch { return nil }
        return nil
    }

    @Test func greetingCapabilitiesAndAnswers() throws {
        try withServer({ command, args in
            command == "echo" ? [.answer(args?.json ?? "null")] : []
        }) { server in
            let client = try QMPClient(socketPath: server.path, timeout: 2)
            #expect(client.qemuVersion == "7.2.22")
            #expect(client.peerPID == getpid())
            let big: QMPValue = ["n": .uint(UInt64.max), "s": "a\"b\\c\n", "b": true, "i": -3, "list": [1, 2]]
            #expect(try client.execute("echo", arguments: big) == big)
            #expect(server.requests == ["qmp_capabilities", "echo"])
        }
    }

    @Test func eventsBetweenAnswersAreKept() throws {
        try withServer({ command, _ in
            command == "x-query-virtio"
                ? [.event("DEVICE_DELETED", #"{"path": "/machine/peripheral/hp0dev"}"#), .event("SHUTDOWN", #"{"guest": true, "reason": "guest-shutdown"}"#),
                   .answer(QMPFixtures.xQueryVirtio)]
                : []
        }) { server in
            let client = try QMPClient(socketPath: server.path, timeout: 2)
            let answer = try client.execute("x-query-virtio")
            #expect(answer.array?.first?["path"]?.string == "/machine/peripheral/scsi0/virtio-backend")
            let events = client.takeEvents()
            #expect(events.map(\.name) == ["DEVICE_DELETED", "SHUTDOWN"])
            #expect(events.first?.data["path"]?.string == "/machine/peripheral/hp0dev")
            #expect(events.first?.time == 1795557447.262287)
            #expect(client.takeEvents() == [])
        }
    }

    @Test func answersToOtherIDsAreSkipped() throws {
        try withServer({ command, _ in
            command == "query-status" ? [.raw(#"{"return": "stale", "id": 999}"# + "\r\n"), .answer(#"{"status": "running"}"#)] : []
        }) { server in
            let client = try QMPClient(socketPath: server.path, timeout: 2)
            #expect(try client.execute("query-status")["status"]?.string == "running")
        }
    }

    @Test func commandErrorNamesCommandAndDescription() throws {
        try withServer({ command, _ in
            command == "x-query-virtio-status" ? [.error(QMPFixtures.badPathError)] : []
        }) { server in
            let client = try QMPClient(socketPath: server.path, timeout: 2)
            let e = error { _ = try client.execute("x-query-virtio-status", arguments: ["path": "/nope"]) }
            #expect(e == QMPError(.commandFailed, "QMP: command x-query-virtio-status failed: Path /nope is not a VirtIODevice", errorClass: "GenericError"))
            // The connection is still usable.
            #expect(client.isOpen)
        }
    }

    @Test func socketClosedMidAnswer() throws {
        try withServer({ command, _ in
            command == "x-query-virtio" ? [.raw(#"{"return": [{"name": "virt"#), .close] : []
        }) { server in
            let client = try QMPClient(socketPath: server.path, timeout: 2)
            let e = error { _ = try client.execute("x-query-virtio") }
            #expect(e == QMPError(.closed, "QMP socket \(server.path): QEMU closed the connection in the middle of an answer while we waited for the answer to x-query-virtio"))
            #expect(e?.meansQEMUIsGone == true)
            #expect(client.isOpen == false)
            #expect(error { _ = try client.execute("x-query-virtio") } == QMPError(.closed, "QMP socket \(server.path): the connection is closed"))
        }
    }

    @Test func socketClosedBetweenAnswers() throws {
        try withServer({ command, _ in command == "quit" ? [.close] : [] }) { server in
            let client = try QMPClient(socketPath: server.path, timeout: 2)
            let e = error { _ = try client.execute("quit") }
            #expect(e == QMPError(.closed, "QMP socket \(server.path): QEMU closed the connection while we waited for the answer to quit"))
        }
    }

    @Test func garbageIsNotQMP() throws {
        try withServer({ command, _ in command == "x-query-virtio" ? [.raw("<html>hello</html>\r\n")] : [] }) { server in
            let client = try QMPClient(socketPath: server.path, timeout: 2)
            let e = error { _ = try client.execute("x-query-virtio") }
            #expect(e == QMPError(.notQMP, "QMP socket \(server.path): not JSON while waiting for the answer to x-query-virtio: <html>hello</html>"))
        }
    }

    @Test func answerWithoutReturnIsNotQMP() throws {
        try withServer({ command, _ in command == "x" ? [.raw(#"{"hello": 1}"# + "\n")] : [] }) { server in
            let client = try QMPClient(socketPath: server.path, timeout: 2)
            #expect(error { _ = try client.execute("x") } == QMPError(.notQMP, #"QMP socket \#(server.path): answer to x has neither return nor error: {"hello":1}"#))
        }
    }

    @Test func silenceTimesOut() throws {
        try withServer({ command, _ in command == "qmp_capabilities" ? [] : [.raw("")] }) { server in
            let client = try QMPClient(socketPath: server.path, timeout: 2)
            client.timeout = 0.2
            let start = Date()
            let e = error { _ = try client.execute("x-query-virtio") }
            let took = Date().timeIntervalSince(start)
            #expect(e == QMPError(.timeout, "QMP socket \(server.path): no answer to x-query-virtio within 0.2 s"))
            #expect(took >= 0.19 && took < 1.5)
        }
    }

    @Test func greetingThatIsNotQMP() throws {
        try withServer({ _, _ in [] }, greeting: #"{"hello": "world"}"#) { server in
            #expect(error { _ = try QMPClient(socketPath: server.path, timeout: 2) }
                    == QMPError(.notQMP, "QMP socket \(server.path): no QMP greeting (is this a -qmp socket, not a -monitor one?)"))
        }
    }

    @Test func noGreetingTimesOut() throws {
        try withServer({ _, _ in [] }, greeting: "") { server in
            // An empty greeting line is skipped; nothing else comes.
            #expect(error { _ = try QMPClient(socketPath: server.path, timeout: 0.2) }
                    == QMPError(.notQMP, "QMP socket \(server.path): no QMP greeting (is this a -qmp socket, not a -monitor one?)"))
        }
    }

    @Test func connectionRefusedAndMissingSocket() throws {
        let dir = NSTemporaryDirectory() + "vqtap-qmp-refused-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A socket that is bound but does not listen: what a dead QEMU leaves behind.
        let path = dir + "/dead.sock"
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        #expect(error { _ = try QMPClient(socketPath: path) } == QMPError(.connect, "QMP socket \(path): connection refused"))
        #expect(error { _ = try QMPClient(socketPath: dir + "/none.sock") } == QMPError(.connect, "QMP socket \(dir)/none.sock: no such file or directory"))
        let long = "/tmp/" + String(repeating: "x", count: 200)
        #expect(error { _ = try QMPClient(socketPath: long) } == QMPError(.connect, "QMP socket \(long): path is empty or longer than 107 bytes"))
    }

    @Test func connectWaitsForTheSocket() throws {
        let missing = NSTemporaryDirectory() + "vqtap-qmp-never-\(getpid()).sock"
        let start = Date()
        #expect(error { _ = try QMPClient.connect(socketPath: missing, waiting: 0.2) } == QMPError(.connect, "QMP socket \(missing): no such file or directory"))
        #expect(Date().timeIntervalSince(start) >= 0.2)
        try withServer({ _, _ in [] }) { server in
            let client = try QMPClient.connect(socketPath: server.path, waiting: 1)
            #expect(client.qemuVersion == "7.2.22")
        }
    }

    @Test func valueParsing() throws {
        let v = try #require(QMPValue.parse(Data(#"{"a": [true, 0, -1, 1.5, "x", null, 18446744073709551615, 9223372036854775807]}"#.utf8)))
        #expect(v == ["a": [true, 0, -1, .double(1.5), "x", .null, .uint(UInt64.max), .int(Int64.max)]])
        #expect(v["a"]?.array?[1].uint64 == 0)
        #expect(v["a"]?.array?[2].uint64 == nil)
        #expect(v["a"]?.array?[6].uint64 == UInt64.max)
        #expect(v["a"]?.array?[6].int64 == nil)
        #expect(QMPValue.parse(Data("{".utf8)) == nil)
        #expect(QMPValue.string("\u{1}\t").json == #""\u0001\t""#)
    }
}
