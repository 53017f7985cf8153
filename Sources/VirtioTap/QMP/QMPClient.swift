import CVQSys
import Foundation

// A blocking client for the QEMU Machine Protocol on a unix socket: one JSON object per
// line each way. QEMU greets, we send `qmp_capabilities`, then every command carries an `id`
// and its answer echoes it; asynchronous events (SHUTDOWN, DEVICE_DELETED, ...) may arrive
// between them and are kept for the caller. Every read has a deadline: a hung QEMU must not
// hang the tap. QEMU serves one client per `-qmp` socket, hence a second `-qmp` for the tap.

public struct QMPError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The socket could not be reached (missing, refused, not a socket).
        case connect
        /// QEMU closed the connection: it exited or dropped us.
        case closed
        /// No answer within the deadline.
        case timeout
        /// What came back is not QMP (not JSON, no greeting).
        case notQMP
        /// QEMU answered with an error object.
        case commandFailed
        /// The answer is QMP but lacks what the command promises.
        case unexpectedAnswer
    }

    public var kind: Kind
    public var message: String
    /// QEMU's error class for `commandFailed` (`GenericError`, `CommandNotFound`, ...).
    public var errorClass: String?

    public init(_ kind: Kind, _ message: String, errorClass: String? = nil) {
        self.kind = kind; self.message = message; self.errorClass = errorClass
    }

    public var description: String { message }
    /// True when the QEMU behind the socket is gone (a tap stops with exit status 3).
    public var meansQEMUIsGone: Bool { kind == .closed }
}

/// An asynchronous QMP event.
public struct QMPEvent: Sendable, Equatable {
    public var name: String
    public var data: QMPValue
    /// QEMU's wall clock when it sent the event, in seconds since the epoch.
    public var time: Double?

    public init(name: String, data: QMPValue = .null, time: Double? = nil) {
        self.name = name; self.data = data; self.time = time
    }
}

public final class QMPClient {
    public let socketPath: String
    /// Seconds allowed for each answer (and for the greeting).
    public var timeout: Double
    /// QEMU's greeting object (`{"QMP": {"version": ..., "capabilities": ...}}`).
    public private(set) var greeting: QMPValue = .null
    /// The process at the other end of the socket (SO_PEERCRED), if the kernel told us.
    public private(set) var peerPID: Int32?
    private var events: [QMPEvent] = []
    private static let maxQueuedEvents = 1024
    private var fd: Int32 = -1
    private var buffer: [UInt8] = []
    private var nextID = 1

    /// Connects, reads the greeting and leaves capabilities negotiation mode.
    public init(socketPath: String, timeout: Double = 5) throws(QMPError) {
        self.socketPath = socketPath
        self.timeout = timeout
        try connect()
        let deadline = Self.deadline(after: timeout)
        guard let first = try readMessage(until: deadline, waitingFor: "the greeting"), first["QMP"] != nil else {
            close()
            throw QMPError(.notQMP, "QMP socket \(socketPath): no QMP greeting (is this a -qmp socket, not a -monitor one?)")
        }
        greeting = first
        _ = try execute("qmp_capabilities")
    }

    deinit { close() }

    /// Connects, retrying while the socket is missing or refuses (QEMU not started yet),
    /// for up to `waiting` seconds. Other errors are thrown at once.
    public static func connect(socketPath: String, timeout: Double = 5, waiting: Double) throws(QMPError) -> QMPClient {
        let deadline = deadline(after: waiting)
        while true {
            do {
                return try QMPClient(socketPath: socketPath, timeout: timeout)
            } catch where error.kind == .connect && vq_monotonic_ns() < deadline {
                usleep(50_000)
            }
        }
    }

    /// `major.minor.micro` from the greeting, e.g. `7.2.22`.
    public var qemuVersion: String? {
        guard let v = greeting["QMP"]?["version"]?["qemu"],
              let major = v["major"]?.int64, let minor = v["minor"]?.int64, let micro = v["micro"]?.int64 else { return nil }
        return "\(major).\(minor).\(micro)"
    }

    public var isOpen: Bool { fd >= 0 }

    public func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }

    /// Runs one command and returns its `return` value. Events that arrive meanwhile are
    /// queued (see `takeEvents`).
    public func execute(_ command: String, arguments: QMPValue? = nil) throws(QMPError) -> QMPValue {
        guard fd >= 0 else { throw QMPError(.closed, "QMP socket \(socketPath): the connection is closed") }
        let id = nextID
        nextID += 1
        var request: [String: QMPValue] = ["execute": .string(command), "id": .int(Int64(id))]
        if let arguments { request["arguments"] = arguments }
        try send(QMPValue.object(request).json + "\n", command: command)
        let deadline = Self.deadline(after: timeout)
        while true {
            guard let message = try readMessage(until: deadline, waitingFor: "the answer to \(command)") else {
                throw QMPError(.timeout, "QMP socket \(socketPath): no answer to \(command) within \(Self.seconds(timeout))")
            }
            if message["event"] != nil { continue }
            // An answer to an earlier command that timed out: not ours.
            if let answerID = message["id"], answerID != .int(Int64(id)) { continue }
            if let error = message["error"] {
                let desc = error["desc"]?.string ?? error.json
                throw QMPError(.commandFailed, "QMP: command \(command) failed: \(desc)", errorClass: error["class"]?.string)
            }
            guard let result = message["return"] else {
                throw QMPError(.notQMP, "QMP socket \(socketPath): answer to \(command) has neither return nor error: \(Self.excerpt(message.json))")
            }
            return result
        }
    }

    /// The events received so far, oldest first; the queue is emptied.
    public func takeEvents() -> [QMPEvent] {
        defer { events.removeAll() }
        return events
    }

    /// Waits up to `seconds` for events without sending a command, then returns the queue.
    public func waitForEvents(seconds: Double) throws(QMPError) -> [QMPEvent] {
        if events.isEmpty, fd >= 0 {
            _ = try readMessage(until: Self.deadline(after: seconds), waitingFor: "events", eventsOnly: true)
        }
        return takeEvents()
    }

    // MARK: - socket

    private func connect() throws(QMPError) {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(socketPath.utf8)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard !pathBytes.isEmpty, pathBytes.count < capacity else {
            throw QMPError(.connect, "QMP socket \(socketPath): path is empty or longer than \(capacity - 1) bytes")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in pathBytes.enumerated() { raw[i] = b }
            raw[pathBytes.count] = 0
        }
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw QMPError(.connect, "QMP socket \(socketPath): \(Self.errnoText(errno))") }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            Glibc.close(s)
            throw QMPError(.connect, "QMP socket \(socketPath): \(Self.errnoText(e))")
        }
        fd = s
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
        _ = setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
        var cred: (Int32, UInt32, UInt32) = (0, 0, 0)
        var len = socklen_t(MemoryLayout.size(ofValue: cred))
        if getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0, cred.0 > 0 { peerPID = cred.0 }
    }

    private func send(_ text: String, command: String) throws(QMPError) {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress.map { $0 + sent }, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                if e == EAGAIN || e == EWOULDBLOCK {
                    throw QMPError(.timeout, "QMP socket \(socketPath): QEMU does not read (sending \(command))")
                }
                close()
                throw QMPError(.closed, "QMP socket \(socketPath): QEMU closed the connection (sending \(command): \(Self.errnoText(e)))")
            }
            sent += n
        }
    }

    /// The next message, events queued along the way. Returns nil at the deadline; with
    /// `eventsOnly`, returns as soon as one event was queued.
    @discardableResult
    private func readMessage(until deadline: UInt64, waitingFor what: String, eventsOnly: Bool = false) throws(QMPError) -> QMPValue? {
        while true {
            while let nl = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(buffer[..<nl])
                buffer.removeSubrange(...nl)
                let trimmed = line.filter { $0 != UInt8(ascii: "\r") }
                if trimmed.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
                guard let message = QMPValue.parse(Data(trimmed)), message.object != nil else {
                    throw QMPError(.notQMP, "QMP socket \(socketPath): not JSON while waiting for \(what): \(Self.excerpt(String(decoding: trimmed, as: UTF8.self)))")
                }
                if let name = message["event"]?.string {
                    queue(QMPEvent(name: name, data: message["data"] ?? .null, time: Self.eventTime(message["timestamp"])))
                    if eventsOnly { return message }
                    continue
                }
                return message
            }
            let now = vq_monotonic_ns()
            guard now < deadline else { return nil }
            let waitMs = Int32(min((deadline - now + 999_999) / 1_000_000, UInt64(Int32.max)))
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, waitMs)
            if r < 0 {
                if errno == EINTR { continue }
                throw QMPError(.closed, "QMP socket \(socketPath): poll failed: \(Self.errnoText(errno))")
            }
            if r == 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                let e = errno
                close()
                throw QMPError(.closed, "QMP socket \(socketPath): read failed: \(Self.errnoText(e))")
            }
            if n == 0 {
                close()
                let partial = buffer.isEmpty ? "" : " in the middle of an answer"
                throw QMPError(.closed, "QMP socket \(socketPath): QEMU closed the connection\(partial) while we waited for \(what)")
            }
            buffer.append(contentsOf: chunk[..<n])
        }
    }

    private func queue(_ event: QMPEvent) {
        if events.count >= Self.maxQueuedEvents { events.removeFirst() }
        events.append(event)
    }

    private static func eventTime(_ ts: QMPValue?) -> Double? {
        guard let s = ts?["seconds"]?.int64, let us = ts?["microseconds"]?.int64 else { return nil }
        return Double(s) + Double(us) / 1e6
    }

    static func deadline(after seconds: Double) -> UInt64 {
        vq_monotonic_ns() + UInt64(max(0, seconds) * 1e9)
    }

    static func seconds(_ s: Double) -> String {
        s == s.rounded() ? "\(Int(s)) s" : "\(s) s"
    }

    static func errnoText(_ e: Int32) -> String {
        let text = String(cString: strerror(e))
        guard let first = text.first else { return text }
        return first.lowercased() + text.dropFirst()
    }

    static func excerpt(_ s: String) -> String {
        s.count <= 80 ? s : String(s.prefix(80)) + "..."
    }
}
