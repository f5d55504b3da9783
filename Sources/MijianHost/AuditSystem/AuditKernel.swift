#if canImport(Glibc)
import Glibc
#endif
import MijianCore

/// What the kernel's audit subsystem says of itself over `NETLINK_AUDIT`, without spawning
/// `auditctl`: `AUDIT_GET` gives whether auditing is on (2: on and the rules locked), the pid of
/// the registered audit daemon and the records lost; `AUDIT_LIST_RULES` the rules loaded.
enum AuditKernel {
    static let family: Int32 = 9  // NETLINK_AUDIT
    static let get: UInt16 = 1000  // AUDIT_GET
    static let listRules: UInt16 = 1013  // AUDIT_LIST_RULES
    static let done: UInt16 = 3  // NLMSG_DONE
    static let error: UInt16 = 2  // NLMSG_ERROR

    /// The status and the number of rules loaded.
    static func status(transport: (any NetlinkTransport)? = nil) throws(MijianError) -> AuditKernelStatus {
        let socket: any NetlinkTransport
        if let transport { socket = transport } else { socket = try NetlinkSocket(family: family, name: "NETLINK_AUDIT", receiveTimeoutSeconds: 2) }
        try socket.send(request(type: get, seq: 1))
        var status: AuditKernelStatus?
        while status == nil {
            for (type, payload) in try messages(try socket.receive()) where type == get {
                guard payload.count >= 32 else { throw MijianError(.netlink, "AUDIT_GET answered \(payload.count) bytes, fewer than audit_status's 32") }
                status = AuditKernelStatus(
                    enabled: Int(word(payload, 4)), daemonPID: Int(word(payload, 12)), backlogLimit: Int(word(payload, 20)), lost: Int(word(payload, 24)), rules: 0)
            }
        }
        try socket.send(request(type: listRules, seq: 2))
        var rules = 0
        reading: while true {
            for (type, _) in try messages(try socket.receive()) {
                if type == done { break reading }
                if type == listRules { rules += 1 }
            }
        }
        status?.rules = rules
        guard let status else { throw MijianError(.netlink, "AUDIT_GET gave no status") }
        return status
    }

    static func request(type: UInt16, seq: UInt32) -> [UInt8] {
        var bytes: [UInt8] = []
        func put32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
        func put16(_ value: UInt16) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
        put32(16)
        put16(type)
        put16(1)  // NLM_F_REQUEST
        put32(seq)
        put32(0)
        return bytes
    }

    static func word(_ bytes: ArraySlice<UInt8>, _ offset: Int) -> UInt32 {
        let base = bytes.startIndex + offset
        return UInt32(bytes[base]) | UInt32(bytes[base + 1]) << 8 | UInt32(bytes[base + 2]) << 16 | UInt32(bytes[base + 3]) << 24
    }

    /// The messages of one datagram; a netlink error (not an acknowledgement) is thrown.
    static func messages(_ datagram: [UInt8]) throws(MijianError) -> [(UInt16, ArraySlice<UInt8>)] {
        var out: [(UInt16, ArraySlice<UInt8>)] = []
        var offset = 0
        while datagram.count - offset >= 16 {
            let header = datagram[offset..<(offset + 16)]
            let length = Int(word(header, 0))
            guard length >= 16, offset + length <= datagram.count else { throw MijianError(.netlink, "a NETLINK_AUDIT message of \(length) bytes overruns its datagram") }
            let type = UInt16(header[header.startIndex + 4]) | UInt16(header[header.startIndex + 5]) << 8
            let payload = datagram[(offset + 16)..<(offset + length)]
            if type == error, payload.count >= 4 {
                let code = Int32(bitPattern: word(payload, 0))
                if code != 0 { throw MijianError(.netlink, "the kernel refused the audit request", errno: -code) }
            } else {
                out.append((type, payload))
            }
            offset += (length + 3) & ~3
        }
        return out
    }
}
