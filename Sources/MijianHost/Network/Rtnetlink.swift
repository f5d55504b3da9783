import MijianCore

/// Netlink and rtnetlink numbers used here (kernel UAPI, stable ABI; see linux/netlink.h,
/// linux/rtnetlink.h, linux/fib_rules.h, linux/if_link.h, linux/if_addr.h).
enum RT {
    static let nlmsgNoop: UInt16 = 1
    static let nlmsgError: UInt16 = 2
    static let nlmsgDone: UInt16 = 3
    static let nlmsgOverrun: UInt16 = 4
    static let flagRequest: UInt16 = 0x1
    static let flagMulti: UInt16 = 0x2
    static let flagDump: UInt16 = 0x300
    static let flagDumpInterrupted: UInt16 = 0x10

    static let newLink: UInt16 = 16
    static let getLink: UInt16 = 18
    static let newAddress: UInt16 = 20
    static let getAddress: UInt16 = 22
    static let newRoute: UInt16 = 24
    static let getRoute: UInt16 = 26
    static let newRule: UInt16 = 32
    static let getRule: UInt16 = 34

    static let afUnspec: UInt8 = 0
    static let afInet: UInt8 = 2
    static let afInet6: UInt8 = 10

    // rtattr types of routes
    static let rtaDst: UInt16 = 1
    static let rtaOif: UInt16 = 4
    static let rtaGateway: UInt16 = 5
    static let rtaPriority: UInt16 = 6
    static let rtaMultipath: UInt16 = 9
    static let rtaTable: UInt16 = 15
    static let rtaVia: UInt16 = 18
    static let routeFlagCloned: UInt32 = 0x200

    // fib rule attributes
    static let fraDst: UInt16 = 1
    static let fraSrc: UInt16 = 2
    static let fraIifName: UInt16 = 3
    static let fraGoto: UInt16 = 4
    static let fraPriority: UInt16 = 6
    static let fraFwmark: UInt16 = 10
    static let fraTable: UInt16 = 15
    static let fraFwmask: UInt16 = 16
    static let fraOifName: UInt16 = 17
    static let fraL3mdev: UInt16 = 19
    static let fraUidRange: UInt16 = 20
    static let fraIpProto: UInt16 = 22
    static let fraSportRange: UInt16 = 23
    static let fraDportRange: UInt16 = 24
    static let ruleFlagInvert: UInt32 = 0x2

    // link attributes
    static let iflaIfName: UInt16 = 3
    static let iflaMaster: UInt16 = 10
    static let iflaOperState: UInt16 = 16
    static let iflaLinkInfo: UInt16 = 18
    static let iflaInfoKind: UInt16 = 1

    // address attributes
    static let ifaAddress: UInt16 = 1
    static let ifaLocal: UInt16 = 2

    static let headerLength = 16
}

/// One netlink message: header fields and the payload after the 16-byte header.
public struct NetlinkMessage: Sendable, Equatable {
    /// `nlmsg_type`.
    public var type: UInt16
    /// `nlmsg_flags`.
    public var flags: UInt16
    /// `nlmsg_seq`.
    public var sequence: UInt32
    /// `nlmsg_pid`.
    public var portID: UInt32
    /// The bytes after the header, up to `nlmsg_len`.
    public var payload: [UInt8]

    /// Splits a datagram into messages; any length that does not fit is an error, never a guess.
    public static func split(_ datagram: [UInt8]) throws(MijianError) -> [NetlinkMessage] {
        var messages: [NetlinkMessage] = []
        var offset = 0
        while offset < datagram.count {
            guard datagram.count - offset >= RT.headerLength else {
                throw MijianError(.malformed, "netlink datagram ends with \(datagram.count - offset) stray bytes")
            }
            let length = Int(Bytes.u32(datagram, offset))
            guard length >= RT.headerLength, offset + length <= datagram.count else {
                throw MijianError(.malformed, "netlink message at offset \(offset) claims \(length) bytes; \(datagram.count - offset) remain")
            }
            messages.append(NetlinkMessage(
                type: Bytes.u16(datagram, offset + 4), flags: Bytes.u16(datagram, offset + 6), sequence: Bytes.u32(datagram, offset + 8),
                portID: Bytes.u32(datagram, offset + 12), payload: Array(datagram[(offset + RT.headerLength)..<(offset + length)])))
            offset += Bytes.align4(length)
        }
        return messages
    }

    /// A request: header plus `body`, with the flags given.
    static func request(type: UInt16, flags: UInt16, sequence: UInt32, body: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        Bytes.append32(&out, UInt32(RT.headerLength + body.count))
        Bytes.append16(&out, type)
        Bytes.append16(&out, flags)
        Bytes.append32(&out, sequence)
        Bytes.append32(&out, 0)
        out.append(contentsOf: body)
        return out
    }
}

/// Little helpers to read and write host-order integers in byte arrays (netlink uses host order).
enum Bytes {
    static func u16(_ bytes: [UInt8], _ offset: Int) -> UInt16 {
        guard offset >= 0, offset + 2 <= bytes.count else { return 0 }
        return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt16.self) }
    }

    static func u32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        guard offset >= 0, offset + 4 <= bytes.count else { return 0 }
        return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self) }
    }

    static func i32(_ bytes: [UInt8], _ offset: Int) -> Int32 { Int32(bitPattern: u32(bytes, offset)) }

    static func append16(_ out: inout [UInt8], _ value: UInt16) { withUnsafeBytes(of: value) { out.append(contentsOf: $0) } }
    static func append32(_ out: inout [UInt8], _ value: UInt32) { withUnsafeBytes(of: value) { out.append(contentsOf: $0) } }

    static func align4(_ value: Int) -> Int { (value + 3) & ~3 }

    /// A NUL-terminated string attribute.
    static func string(_ bytes: [UInt8]) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }
}

/// Parsed `rtattr`/`nlattr` list: type (flag bits masked off) to value, first occurrence kept.
struct Attributes {
    private(set) var values: [UInt16: [UInt8]] = [:]

    init(_ bytes: [UInt8], from start: Int) throws(MijianError) {
        var offset = start
        while offset + 4 <= bytes.count {
            let length = Int(Bytes.u16(bytes, offset))
            let type = Bytes.u16(bytes, offset + 2) & 0x3FFF
            guard length >= 4, offset + length <= bytes.count else {
                throw MijianError(.malformed, "netlink attribute \(type) at offset \(offset) claims \(length) bytes; \(bytes.count - offset) remain")
            }
            if values[type] == nil { values[type] = Array(bytes[(offset + 4)..<(offset + length)]) }
            offset += Bytes.align4(length)
        }
    }

    subscript(_ type: UInt16) -> [UInt8]? { values[type] }

    func u32(_ type: UInt16) -> UInt32? {
        guard let value = values[type], value.count >= 4 else { return nil }
        return Bytes.u32(value, 0)
    }
}

/// A route, rule, link and address dump over rtnetlink, with sequence numbers checked,
/// `NLMSG_ERROR` reported, interrupted dumps retried and every read bounded.
public final class RtnetlinkClient {
    private let transport: any NetlinkTransport
    private var sequence: UInt32
    /// The most messages one dump may return before it is abandoned as runaway.
    static let maxMessages = 500_000
    /// The most bytes one dump may return.
    static let maxBytes = 256 << 20
    /// How often a dump the kernel flags as interrupted (the table changed) is retried.
    static let retries = 3

    /// A client over `transport`; sequence numbers start at `firstSequence`.
    public init(transport: any NetlinkTransport, firstSequence: UInt32 = 1) {
        self.transport = transport
        self.sequence = firstSequence
    }

    /// Every IPv4 and IPv6 route of every table (cloned cache entries left out).
    public func routes(interfaceNames: [Int: String]) throws(MijianError) -> [Route] {
        let messages = try dump(type: RT.getRoute, name: "RTM_GETROUTE", body: [RT.afUnspec] + [UInt8](repeating: 0, count: 11))
        var routes: [Route] = []
        for message in messages where message.type == RT.newRoute {
            if let route = try RtnetlinkParser.route(message.payload, interfaceNames: interfaceNames) { routes.append(route) }
        }
        return routes
    }

    /// Every IPv4 and IPv6 policy rule.
    public func rules() throws(MijianError) -> [PolicyRule] {
        let messages = try dump(type: RT.getRule, name: "RTM_GETRULE", body: [RT.afUnspec] + [UInt8](repeating: 0, count: 11))
        var rules: [PolicyRule] = []
        for message in messages where message.type == RT.newRule {
            if let rule = try RtnetlinkParser.rule(message.payload) { rules.append(rule) }
        }
        return rules
    }

    /// Every link, without addresses.
    public func links() throws(MijianError) -> [NetworkInterface] {
        let messages = try dump(type: RT.getLink, name: "RTM_GETLINK", body: [RT.afUnspec] + [UInt8](repeating: 0, count: 15))
        var links: [NetworkInterface] = []
        for message in messages where message.type == RT.newLink {
            if let link = try RtnetlinkParser.link(message.payload) { links.append(link) }
        }
        return links
    }

    /// Every IPv4 and IPv6 address, with the index of its interface.
    public func addresses() throws(MijianError) -> [(index: Int, address: InterfaceAddress)] {
        let messages = try dump(type: RT.getAddress, name: "RTM_GETADDR", body: [RT.afUnspec] + [UInt8](repeating: 0, count: 7))
        var addresses: [(index: Int, address: InterfaceAddress)] = []
        for message in messages where message.type == RT.newAddress {
            if let entry = try RtnetlinkParser.address(message.payload) { addresses.append(entry) }
        }
        return addresses
    }

    /// Sends one dump request and collects its messages up to `NLMSG_DONE`.
    func dump(type: UInt16, name: String, body: [UInt8]) throws(MijianError) -> [NetlinkMessage] {
        var attempt = 0
        while true {
            attempt += 1
            let (messages, interrupted) = try dumpOnce(type: type, name: name, body: body)
            if !interrupted { return messages }
            if attempt >= RtnetlinkClient.retries {
                throw MijianError(.netlink, "\(name) dump was interrupted by changes \(attempt) times in a row; try again")
            }
        }
    }

    private func dumpOnce(type: UInt16, name: String, body: [UInt8]) throws(MijianError) -> ([NetlinkMessage], Bool) {
        sequence &+= 1
        let expected = sequence
        try transport.send(NetlinkMessage.request(type: type, flags: RT.flagRequest | RT.flagDump, sequence: expected, body: body))
        var messages: [NetlinkMessage] = []
        var bytes = 0
        var interrupted = false
        while true {
            let datagram = try transport.receive()
            bytes += datagram.count
            guard bytes <= RtnetlinkClient.maxBytes else {
                throw MijianError(.tooLarge, "\(name) dump exceeded \(RtnetlinkClient.maxBytes) bytes")
            }
            if datagram.isEmpty { throw MijianError(.netlink, "\(name) dump: the kernel sent an empty datagram before NLMSG_DONE") }
            for message in try NetlinkMessage.split(datagram) {
                guard message.sequence == expected else {
                    throw MijianError(.netlink, "\(name) dump: reply has sequence \(message.sequence), expected \(expected)")
                }
                if message.flags & RT.flagDumpInterrupted != 0 { interrupted = true }
                switch message.type {
                case RT.nlmsgDone:
                    if message.payload.count >= 4, Bytes.i32(message.payload, 0) < 0 {
                        let code = -Bytes.i32(message.payload, 0)
                        throw MijianError(.netlink, "\(name) dump failed in the kernel", errno: code)
                    }
                    return (messages, interrupted)
                case RT.nlmsgError:
                    let code = message.payload.count >= 4 ? -Bytes.i32(message.payload, 0) : 0
                    if code == 0 { return (messages, interrupted) }
                    throw MijianError(.netlink, "\(name) dump refused by the kernel", errno: code)
                case RT.nlmsgOverrun:
                    throw MijianError(.netlink, "\(name) dump: the kernel reported a buffer overrun")
                case RT.nlmsgNoop:
                    continue
                default:
                    messages.append(message)
                    guard messages.count <= RtnetlinkClient.maxMessages else {
                        throw MijianError(.tooLarge, "\(name) dump exceeded \(RtnetlinkClient.maxMessages) messages")
                    }
                }
            }
        }
    }
}

/// Turns rtnetlink message payloads into facts; pure, so it is tested on captured bytes.
public enum RtnetlinkParser {
    /// A route from an `RTM_NEWROUTE` payload; nil for other families and cloned cache entries.
    public static func route(_ payload: [UInt8], interfaceNames: [Int: String]) throws(MijianError) -> Route? {
        guard payload.count >= 12 else { throw MijianError(.malformed, "RTM_NEWROUTE payload of \(payload.count) bytes is shorter than rtmsg") }
        let family = payload[0]
        guard family == RT.afInet || family == RT.afInet6 else { return nil }
        let flags = Bytes.u32(payload, 8)
        if flags & RT.routeFlagCloned != 0 { return nil }
        let width = family == RT.afInet ? 4 : 16
        let attributes = try Attributes(payload, from: 12)
        let destinationBytes = attributes[RT.rtaDst] ?? [UInt8](repeating: 0, count: width)
        guard destinationBytes.count == width, let address = IPAddress(bytes: destinationBytes),
            let destination = IPNetwork(address: address, prefixLength: Int(payload[1]))
        else {
            throw MijianError(.malformed, "RTM_NEWROUTE has a destination of \(attributes[RT.rtaDst]?.count ?? 0) bytes and length /\(payload[1])")
        }
        let table = attributes.u32(RT.rtaTable) ?? UInt32(payload[4])
        var gateway = attributes[RT.rtaGateway].flatMap { IPAddress(bytes: $0) }
        if gateway == nil, let via = attributes[RT.rtaVia], via.count >= 6 { gateway = IPAddress(bytes: via[2...]) }
        var oif = attributes.u32(RT.rtaOif).map { Int(Int32(bitPattern: $0)) }
        if let multipath = attributes[RT.rtaMultipath], multipath.count >= 8 {
            // The first next hop stands for the route; which one carries a packet does not change where it can go.
            let hopLength = Int(Bytes.u16(multipath, 0))
            if oif == nil { oif = Int(Bytes.i32(multipath, 4)) }
            if gateway == nil, hopLength > 8, hopLength <= multipath.count {
                let hop = try Attributes(Array(multipath[0..<hopLength]), from: 8)
                gateway = hop[RT.rtaGateway].flatMap { IPAddress(bytes: $0) }
            }
        }
        let device = oif.map { interfaceNames[$0] ?? "ifindex \($0)" }
        return Route(
            table: table, type: RouteType(kernelValue: payload[7]), destination: destination, gateway: gateway, device: device,
            metric: attributes.u32(RT.rtaPriority), source: "netlink")
    }

    /// A policy rule from an `RTM_NEWRULE` payload; nil for families other than IPv4 and IPv6.
    public static func rule(_ payload: [UInt8]) throws(MijianError) -> PolicyRule? {
        guard payload.count >= 12 else { throw MijianError(.malformed, "RTM_NEWRULE payload of \(payload.count) bytes is shorter than fib_rule_hdr") }
        let family = payload[0]
        guard family == RT.afInet || family == RT.afInet6 else { return nil }
        let attributes = try Attributes(payload, from: 12)
        let width = family == RT.afInet ? 4 : 16
        func prefix(_ type: UInt16, _ length: UInt8) -> String {
            guard let bytes = attributes[type], bytes.count == width, let address = IPAddress(bytes: bytes) else { return "all" }
            return IPNetwork(address: address, prefixLength: Int(length))?.description ?? "all"
        }
        var selector: [String] = []
        if Bytes.u32(payload, 8) & RT.ruleFlagInvert != 0 { selector.append("not") }
        selector.append("from \(prefix(RT.fraSrc, payload[2]))")
        if attributes[RT.fraDst] != nil { selector.append("to \(prefix(RT.fraDst, payload[1]))") }
        if payload[3] != 0 { selector.append("tos 0x\(String(payload[3], radix: 16))") }
        if let mark = attributes.u32(RT.fraFwmark) {
            var text = "fwmark 0x\(String(mark, radix: 16))"
            if let mask = attributes.u32(RT.fraFwmask), mask != 0xFFFF_FFFF { text += "/0x\(String(mask, radix: 16))" }
            selector.append(text)
        }
        if let name = attributes[RT.fraIifName] { selector.append("iif \(Bytes.string(name))") }
        if let name = attributes[RT.fraOifName] { selector.append("oif \(Bytes.string(name))") }
        if let range = attributes[RT.fraUidRange], range.count >= 8 { selector.append("uidrange \(Bytes.u32(range, 0))-\(Bytes.u32(range, 4))") }
        if let proto = attributes[RT.fraIpProto], let number = proto.first { selector.append("ipproto \(number)") }
        if attributes[RT.fraSportRange] != nil { selector.append("sport …") }
        if attributes[RT.fraDportRange] != nil { selector.append("dport …") }
        let action = RuleAction(kernelValue: payload[7])
        if action == .goto, let target = attributes.u32(RT.fraGoto) { selector.append("goto \(target)") }
        return PolicyRule(
            family: family == RT.afInet ? 4 : 6, priority: attributes.u32(RT.fraPriority) ?? 0, action: action,
            table: attributes.u32(RT.fraTable) ?? UInt32(payload[4]), l3mdev: (attributes[RT.fraL3mdev]?.first ?? 0) != 0,
            selector: selector.joined(separator: " "))
    }

    /// A link from an `RTM_NEWLINK` payload.
    public static func link(_ payload: [UInt8]) throws(MijianError) -> NetworkInterface? {
        guard payload.count >= 16 else { throw MijianError(.malformed, "RTM_NEWLINK payload of \(payload.count) bytes is shorter than ifinfomsg") }
        let attributes = try Attributes(payload, from: 16)
        let index = Int(Bytes.i32(payload, 4))
        let name = attributes[RT.iflaIfName].map(Bytes.string) ?? "ifindex \(index)"
        var kind: String?
        if let info = attributes[RT.iflaLinkInfo] {
            kind = try Attributes(info, from: 0)[RT.iflaInfoKind].map(Bytes.string)
        }
        let operStates = ["unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up"]
        let operState = attributes[RT.iflaOperState]?.first.map { Int($0) < operStates.count ? operStates[Int($0)] : "state \($0)" }
        var link = NetworkInterface(
            name: name, index: index, kind: kind, linkType: Int(Bytes.u16(payload, 2)), flags: Bytes.u32(payload, 8), operState: operState)
        if let master = attributes.u32(RT.iflaMaster), master != 0 { link.masterIndex = Int(master) }
        return link
    }

    /// An address and its interface index from an `RTM_NEWADDR` payload.
    public static func address(_ payload: [UInt8]) throws(MijianError) -> (index: Int, address: InterfaceAddress)? {
        guard payload.count >= 8 else { throw MijianError(.malformed, "RTM_NEWADDR payload of \(payload.count) bytes is shorter than ifaddrmsg") }
        guard payload[0] == RT.afInet || payload[0] == RT.afInet6 else { return nil }
        let attributes = try Attributes(payload, from: 8)
        // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on point-to-point links.
        guard let bytes = attributes[RT.ifaLocal] ?? attributes[RT.ifaAddress], let address = IPAddress(bytes: bytes) else { return nil }
        return (Int(Bytes.u32(payload, 4)), InterfaceAddress(address: address, prefixLength: Int(payload[1])))
    }
}
