import Foundation

/// A rule of the catalogue: id, version, title, and the regulation items it answers.
public struct RuleInfo: Sendable, Equatable, Hashable {
    /// Dotted id, e.g. `net.internet-route`.
    public let id: String
    /// Bumped when the rule's logic changes.
    public let version: String
    /// Short English title.
    public let title: String
    /// Short Chinese title.
    public let titleZH: String
    /// Regulation items and score items.
    public let references: [Reference]
    /// Severity of a failure unless the policy overrides it.
    public let defaultSeverity: Severity

    /// Makes a rule.
    public init(id: String, version: String = "1", title: String, titleZH: String, references: [Reference], defaultSeverity: Severity) {
        self.id = id
        self.version = version
        self.title = title
        self.titleZH = titleZH
        self.references = references
        self.defaultSeverity = defaultSeverity
    }

    /// The 七.x items, for tables: `七.3 七.7`.
    public var itemsText: String {
        references.filter { $0.system == "bm-self-assessment" }.map(\.id).joined(separator: " ")
    }
}

/// Every rule Mijian knows, with its place in the regulation.
public enum RuleCatalogue {
    public static let internetRoute = RuleInfo(
        id: "net.internet-route", title: "No route reaches the internet", titleZH: "无通往互联网的路由",
        references: [.item("七.3"), .item("七.7"), .score("53")], defaultSeverity: .critical)
    public static let publicDNS = RuleInfo(
        id: "net.public-dns", title: "Resolvers are the unit's own", titleZH: "域名解析服务器为本单位内部",
        references: [.item("七.3")], defaultSeverity: .high)
    public static let interfaces = RuleInfo(
        id: "net.interfaces", title: "No public addresses, tunnels or USB network links", titleZH: "无公网地址、隧道或USB网络接口",
        references: [.item("七.3"), .item("七.7")], defaultSeverity: .high)
    public static let sockets = RuleInfo(
        id: "net.sockets", title: "No sockets with peers outside the unit", titleZH: "无与单位外部通信的连接",
        references: [.item("七.6"), .item("七.7")], defaultSeverity: .medium)
    public static let wirelessHardware = RuleInfo(
        id: "wireless.hardware", title: "No wireless hardware", titleZH: "无无线模块和外围设备",
        references: [.item("七.6")], defaultSeverity: .high)
    public static let wirelessModules = RuleInfo(
        id: "wireless.modules", title: "Wireless drivers not loaded and disabled", titleZH: "无线驱动未加载且已禁用",
        references: [.item("七.6")], defaultSeverity: .medium)
    public static let wirelessHistory = RuleInfo(
        id: "wireless.history", title: "No saved wireless, mobile or VPN profiles", titleZH: "无无线、移动网络或VPN连接记录",
        references: [.item("七.6"), .item("七.7")], defaultSeverity: .medium)
    public static let usbStorage = RuleInfo(
        id: "usb.storage", title: "USB storage is registered and controlled", titleZH: "USB存储介质已登记且受控",
        references: [.item("七.6"), .item("七.11")], defaultSeverity: .high)
    public static let usbHistory = RuleInfo(
        id: "usb.history", title: "Past USB storage connections are registered", titleZH: "历史USB存储介质接入已登记",
        references: [.item("七.9"), .item("七.11")], defaultSeverity: .medium)
    public static let usbPhone = RuleInfo(
        id: "usb.phone", title: "No phone attached", titleZH: "未连接手机",
        references: [.item("七.13"), .item("七.7")], defaultSeverity: .high)
    public static let hardwareChannels = RuleInfo(
        id: "hardware.channels", title: "No serial, parallel, FireWire, PCMCIA, IrDA, modem or optical channel the policy does not allow",
        titleZH: "无未经允许的串口、并口、1394、PCMCIA、红外、调制解调器或光驱",
        references: [.item("七.6")], defaultSeverity: .high)
    public static let hostInstallation = RuleInfo(
        id: "host.installation", title: "When this system was installed, what else the machine boots or runs, and when it was used",
        titleZH: "操作系统安装时间、其他操作系统和虚拟机、开机和登录记录",
        references: [.item("七.6"), .item("七.7")], defaultSeverity: .medium)
    public static let browserHistory = RuleInfo(
        id: "net.history", title: "No browser history or HSTS entry of a site outside the unit", titleZH: "无访问互联网的浏览器历史记录",
        references: [.item("七.7"), .score("53")], defaultSeverity: .critical)
    public static let trafficEgress = RuleInfo(
        id: "traffic.egress", title: "No traffic to outside the unit", titleZH: "无违规外联流量",
        references: [.item("七.6"), .item("七.7"), .score("53")], defaultSeverity: .critical)
    public static let agentHealth = RuleInfo(
        id: "agent.health", title: "The agent is healthy and enforcing", titleZH: "防护代理运行正常",
        references: [.item("七.10")], defaultSeverity: .high)
    public static let usbControl = RuleInfo(
        id: "usb.control", title: "Every USB interface is judged before it gets a driver", titleZH: "USB设备接入受控",
        references: [.item("七.6"), .item("七.11"), .item("七.13")], defaultSeverity: .high)
    public static let logRetention = RuleInfo(
        id: "log.retention", title: "Logs are persistent and reach back", titleZH: "日志持久保存且可追溯",
        references: [.item("七.10")], defaultSeverity: .low)
    public static let malwareScanner = RuleInfo(
        id: "malware.scanner", title: "A malware scanner with current signatures", titleZH: "安装病毒查杀软件且病毒库及时更新",
        references: [.item("七.6")], defaultSeverity: .medium)
    public static let printDevices = RuleInfo(
        id: "print.devices", title: "Printers send only inside the unit", titleZH: "打印机连接在本单位内部",
        references: [.item("七.12")], defaultSeverity: .low)
    public static let auditSystem = RuleInfo(
        id: "audit.system", title: "auditd runs with rules for logins, mounts, modules and accounts, and keeps its logs",
        titleZH: "安全审计系统运行且审计规则完整、日志不被覆盖",
        references: [.item("七.2"), .item("七.10"), Reference(system: "stig-ubuntu-22.04", id: "UBTU-22-653010"), Reference(system: "stig-ubuntu-22.04", id: "UBTU-22-212015")],
        defaultSeverity: .medium)
    public static let softwareProhibited = RuleInfo(
        id: "software.prohibited", title: "No instant messaging, cloud sync, remote control, VPN/proxy or P2P software",
        titleZH: "未安装即时通信、云存储、远程控制、VPN代理或P2P软件", references: [.item("七.4"), .item("七.6")], defaultSeverity: .high)
    public static let sharing = RuleInfo(
        id: "sharing", title: "No shared folders, exported directories, shared printers or published services",
        titleZH: "无共享文件夹、共享打印机或对外发布的服务", references: [.item("七.12"), .item("七.6")], defaultSeverity: .medium)

    public static let dataMarkings = RuleInfo(
        id: "data.markings", title: "No document with a classified marking on an unclassified computer", titleZH: "非涉密计算机未存储、处理涉密信息",
        references: [.item("七.8"), .score("54")], defaultSeverity: .critical)

    /// Rules `mijian audit` runs, in report order.
    public static let auditRules: [RuleInfo] = [
        internetRoute, publicDNS, interfaces, sockets, wirelessHardware, wirelessModules, wirelessHistory, usbStorage,
        usbHistory, usbPhone, hardwareChannels, logRetention, hostInstallation,
        browserHistory,
        malwareScanner, auditSystem, softwareProhibited, sharing, printDevices,
        authPassword, authLockout, authAccounts, authScreenlock,
    ]

    /// Every rule the agent knows.
    public static let all: [RuleInfo] = auditRules + [trafficEgress, agentHealth, usbControl, dataMarkings]

    /// The first rule of `all` under each id.
    private static let byID: [String: RuleInfo] = Dictionary(all.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })

    /// The rule with this id.
    public static func rule(_ id: String) -> RuleInfo? { byID[id] }
}

/// 密级: the classification of a machine or medium.
public enum Classification: String, Sendable, CaseIterable {
    case topSecret = "绝密"
    case secret = "机密"
    case confidential = "秘密"
    case unclassified = "非密"

    /// Accepts the Chinese names and the ASCII aliases (juemi, jimi, mimi, feimi, unclassified).
    public init?(parsing text: String) {
        switch text.trimmingCharacters(in: .whitespaces).lowercased() {
        case "绝密", "juemi", "top-secret": self = .topSecret
        case "机密", "jimi", "secret": self = .secret
        case "秘密", "mimi", "confidential": self = .confidential
        case "非密", "feimi", "unclassified": self = .unclassified
        default: return nil
        }
    }

    /// Whether this is a classified (涉密) level.
    public var isClassified: Bool { self != .unclassified }
}
