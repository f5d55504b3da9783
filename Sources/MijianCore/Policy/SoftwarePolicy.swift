import Foundation
import Yams

/// What `software.prohibited` looks for (`software:` in a policy): programs that carry data out of
/// a classified computer (七.4 instant messaging and public cloud; 七.6 remote control, VPN and
/// proxy clients, P2P). The reviewed built-in list below is always in force; a unit adds its own
/// entries (`software.prohibited`) and may exempt entries by name (`software.allow`).
public struct SoftwarePolicy: Sendable, Equatable {
    /// Why a program is prohibited.
    public enum Category: String, Sendable, CaseIterable {
        case instantMessaging = "instant-messaging"
        case cloudStorage = "cloud-storage"
        case remoteControl = "remote-control"
        case vpnProxy = "vpn-proxy"
        case p2p

        /// A short English name for sentences.
        public var label: String {
            switch self {
            case .instantMessaging: return "instant messaging"
            case .cloudStorage: return "cloud storage or sync"
            case .remoteControl: return "remote control"
            case .vpnProxy: return "VPN or proxy"
            case .p2p: return "peer-to-peer file sharing"
            }
        }
    }

    /// One prohibited product and how it shows.
    public struct Entry: Sendable, Equatable {
        /// Its name in findings (and in `software.allow`).
        public var name: String
        /// Why.
        public var category: Category
        /// Debian package names.
        public var packages: [String]
        /// Program names (`comm` or the executable's file name) of its processes.
        public var executables: [String]
        /// Install directories (under `/opt`, `/usr/local` …).
        public var paths: [String]
        /// Flatpak application ids.
        public var flatpak: [String]
        /// Snap names.
        public var snap: [String]

        /// Makes an entry.
        public init(_ name: String, _ category: Category, packages: [String] = [], executables: [String] = [], paths: [String] = [], flatpak: [String] = [], snap: [String] = []) {
            self.name = name
            self.category = category
            self.packages = packages
            self.executables = executables
            self.paths = paths
            self.flatpak = flatpak
            self.snap = snap
        }
    }

    /// Entries the policy adds to the built-in list (`software.prohibited`).
    public var added: [Entry] = []
    /// Names of entries the unit permits (`software.allow`).
    public var allowed: Set<String> = []

    /// Defaults: the built-in list alone.
    public init() {}

    /// The list in force: the built-in entries not allowed, then the policy's own.
    public var entries: [Entry] { (Self.builtIn + added).filter { !allowed.contains($0.name) } }

    /// The reviewed list. Debian package names are those of Debian 12 (checked with `apt-cache
    /// show`); the domestic products are named as their Linux packages install them (the vendors'
    /// `.deb` names, the UOS/Kylin store's reverse-domain ids, their `/opt` directories).
    public static let builtIn: [Entry] = [
        // Instant messaging.
        Entry("WeChat 微信", .instantMessaging, packages: ["wechat", "com.tencent.wechat", "wechat-beta"], executables: ["wechat", "WeChat"], paths: ["/opt/wechat", "/opt/apps/com.tencent.wechat", "/usr/share/wechat"], flatpak: ["com.tencent.WeChat"]),
        Entry("QQ", .instantMessaging, packages: ["linuxqq", "com.qq.im", "com.tencent.qq"], executables: ["qq"], paths: ["/opt/QQ", "/opt/apps/com.qq.im"], flatpak: ["com.qq.QQ"]),
        Entry("WeCom 企业微信", .instantMessaging, packages: ["com.qq.weixin.work.deepin", "wxwork"], executables: ["WXWork.exe", "wxwork"], paths: ["/opt/apps/com.qq.weixin.work.deepin"]),
        Entry("DingTalk 钉钉", .instantMessaging, packages: ["com.alibabainc.dingtalk", "dingtalk"], executables: ["dingtalk", "DingTalk", "com.alibabainc.dingtalk"], paths: ["/opt/apps/com.alibabainc.dingtalk"], flatpak: ["com.alibabainc.dingtalk"]),
        Entry("Feishu 飞书", .instantMessaging, packages: ["bytedance-feishu-stable", "com.bytedance.feishu"], executables: ["feishu", "bytedance-feishu"], paths: ["/opt/bytedance/feishu"]),
        Entry("Lark", .instantMessaging, packages: ["bytedance-lark-stable"], executables: ["lark", "bytedance-lark"], paths: ["/opt/bytedance/lark"]),
        Entry("Tencent Meeting 腾讯会议", .instantMessaging, packages: ["wemeet", "com.tencent.wemeet"], executables: ["wemeetapp"], paths: ["/opt/wemeet"]),
        Entry("Telegram", .instantMessaging, packages: ["telegram-desktop"], executables: ["telegram-desktop", "Telegram"], paths: ["/opt/telegram"], flatpak: ["org.telegram.desktop"], snap: ["telegram-desktop"]),
        Entry("Pidgin", .instantMessaging, packages: ["pidgin"], executables: ["pidgin"]),
        Entry("Gajim", .instantMessaging, packages: ["gajim"], executables: ["gajim"]),
        Entry("Psi", .instantMessaging, packages: ["psi"], executables: ["psi"]),
        Entry("Dino", .instantMessaging, packages: ["dino-im"], executables: ["dino"]),
        Entry("HexChat", .instantMessaging, packages: ["hexchat"], executables: ["hexchat"]),
        Entry("Konversation", .instantMessaging, packages: ["konversation"], executables: ["konversation"]),
        Entry("Polari", .instantMessaging, packages: ["polari"], executables: ["polari"]),
        Entry("Quassel", .instantMessaging, packages: ["quassel-client", "quassel", "quassel-core"], executables: ["quasselclient", "quassel", "quasselcore"]),
        Entry("WeeChat", .instantMessaging, packages: ["weechat"], executables: ["weechat"]),
        Entry("Irssi", .instantMessaging, packages: ["irssi"], executables: ["irssi"]),
        Entry("Nheko", .instantMessaging, packages: ["nheko"], executables: ["nheko"]),
        Entry("qTox", .instantMessaging, packages: ["qtox", "toxic"], executables: ["qtox", "toxic"]),
        Entry("Jami", .instantMessaging, packages: ["jami"], executables: ["jami", "jami-gnome", "jamid"]),
        Entry("Linphone", .instantMessaging, packages: ["linphone"], executables: ["linphone"]),
        Entry("Mumble", .instantMessaging, packages: ["mumble"], executables: ["mumble"]),
        Entry("Slack", .instantMessaging, packages: ["slack-desktop"], executables: ["slack"], flatpak: ["com.slack.Slack"], snap: ["slack"]),
        Entry("Skype", .instantMessaging, packages: ["skypeforlinux"], executables: ["skypeforlinux"], snap: ["skype"]),
        // Cloud storage and sync.
        Entry("Baidu Netdisk 百度网盘", .cloudStorage, packages: ["baidunetdisk", "com.baidu.baidunetdisk"], executables: ["baidunetdisk"], paths: ["/opt/baidunetdisk", "/opt/apps/com.baidu.baidunetdisk"]),
        Entry("WPS cloud sync WPS云文档", .cloudStorage, executables: ["wpscloudsvr"]),
        Entry("Nutstore 坚果云", .cloudStorage, packages: ["nautilus-nutstore", "nutstore"], executables: ["nutstore"], paths: ["/opt/nutstore"]),
        Entry("Dropbox", .cloudStorage, packages: ["nautilus-dropbox", "dropbox"], executables: ["dropbox"], paths: ["/opt/dropbox"]),
        Entry("Nextcloud", .cloudStorage, packages: ["nextcloud-desktop"], executables: ["nextcloud"], flatpak: ["com.nextcloud.desktopclient.nextcloud"]),
        Entry("ownCloud", .cloudStorage, packages: ["owncloud-client"], executables: ["owncloud"]),
        Entry("Syncthing", .cloudStorage, packages: ["syncthing"], executables: ["syncthing"]),
        Entry("rclone", .cloudStorage, packages: ["rclone"], executables: ["rclone"]),
        Entry("OneDrive", .cloudStorage, packages: ["onedrive"], executables: ["onedrive"]),
        Entry("MEGA", .cloudStorage, packages: ["megasync"], executables: ["megasync"]),
        // Remote control.
        Entry("Sunlogin 向日葵", .remoteControl, packages: ["sunloginclient", "com.oray.sunlogin.client"], executables: ["sunloginclient", "oray_rundaemon"], paths: ["/usr/local/sunlogin", "/opt/apps/com.oray.sunlogin.client"]),
        Entry("ToDesk", .remoteControl, packages: ["todesk", "com.todesk.todesk"], executables: ["ToDesk", "ToDesk_Service", "todesk"], paths: ["/opt/todesk"]),
        Entry("AnyDesk", .remoteControl, packages: ["anydesk"], executables: ["anydesk"], paths: ["/usr/share/anydesk"]),
        Entry("TeamViewer", .remoteControl, packages: ["teamviewer", "teamviewer-host"], executables: ["teamviewerd", "teamviewer", "TeamViewer"], paths: ["/opt/teamviewer"]),
        Entry("RustDesk", .remoteControl, packages: ["rustdesk"], executables: ["rustdesk"], flatpak: ["com.rustdesk.RustDesk"]),
        Entry("x11vnc", .remoteControl, packages: ["x11vnc"], executables: ["x11vnc"]),
        Entry("TigerVNC server", .remoteControl, packages: ["tigervnc-standalone-server", "tigervnc-scraping-server"], executables: ["Xtigervnc", "x0tigervncserver", "Xvnc"]),
        Entry("TightVNC server", .remoteControl, packages: ["tightvncserver"], executables: ["Xtightvnc"]),
        Entry("Vino", .remoteControl, packages: ["vino"], executables: ["vino-server"]),
        Entry("Krfb", .remoteControl, packages: ["krfb"], executables: ["krfb"]),
        Entry("xrdp", .remoteControl, packages: ["xrdp"], executables: ["xrdp", "xrdp-sesman"]),
        Entry("GNOME Remote Desktop", .remoteControl, packages: ["gnome-remote-desktop"], executables: ["gnome-remote-desktop-daemon", "gnome-remote-de"]),
        Entry("X2Go server", .remoteControl, packages: ["x2goserver"], executables: ["x2gocleansessions"]),
        // VPN and proxy clients.
        Entry("OpenVPN", .vpnProxy, packages: ["openvpn", "network-manager-openvpn"], executables: ["openvpn"]),
        Entry("WireGuard", .vpnProxy, packages: ["wireguard", "wireguard-tools"], executables: ["wg-quick"]),
        Entry("strongSwan", .vpnProxy, packages: ["strongswan", "strongswan-starter", "strongswan-charon"], executables: ["charon", "starter"]),
        Entry("OpenConnect", .vpnProxy, packages: ["openconnect", "network-manager-openconnect"], executables: ["openconnect"]),
        Entry("vpnc", .vpnProxy, packages: ["vpnc"], executables: ["vpnc"]),
        Entry("Tor", .vpnProxy, packages: ["tor", "torbrowser-launcher"], executables: ["tor"]),
        Entry("Shadowsocks", .vpnProxy, packages: ["shadowsocks-libev"], executables: ["ss-local", "ss-redir", "ss-tunnel", "ss-server"]),
        Entry("V2Ray", .vpnProxy, packages: ["v2ray"], executables: ["v2ray"]),
        Entry("Clash", .vpnProxy, executables: ["clash", "clash-verge", "mihomo"], paths: ["/opt/clash-verge"]),
        Entry("Privoxy", .vpnProxy, packages: ["privoxy"], executables: ["privoxy"]),
        Entry("Tinyproxy", .vpnProxy, packages: ["tinyproxy"], executables: ["tinyproxy"]),
        Entry("Proxychains", .vpnProxy, packages: ["proxychains4", "proxychains"], executables: ["proxychains4", "proxychains"]),
        Entry("redsocks", .vpnProxy, packages: ["redsocks"], executables: ["redsocks"]),
        Entry("sshuttle", .vpnProxy, packages: ["sshuttle"], executables: ["sshuttle"]),
        // Peer-to-peer file sharing.
        Entry("Transmission", .p2p, packages: ["transmission-gtk", "transmission-qt", "transmission-daemon", "transmission-cli"], executables: ["transmission-gtk", "transmission-qt", "transmission-daemon", "transmission-da", "transmission-cli"]),
        Entry("qBittorrent", .p2p, packages: ["qbittorrent", "qbittorrent-nox"], executables: ["qbittorrent", "qbittorrent-nox"]),
        Entry("Deluge", .p2p, packages: ["deluge", "deluged", "deluge-gtk"], executables: ["deluge", "deluged", "deluge-gtk"]),
        Entry("KTorrent", .p2p, packages: ["ktorrent"], executables: ["ktorrent"]),
        Entry("aria2", .p2p, packages: ["aria2"], executables: ["aria2c"]),
        Entry("aMule", .p2p, packages: ["amule", "amule-daemon"], executables: ["amule", "amuled"]),
        Entry("rTorrent", .p2p, packages: ["rtorrent"], executables: ["rtorrent"]),
        Entry("Xunlei 迅雷", .p2p, packages: ["com.xunlei.download", "xunlei"], executables: ["xunlei", "thunder"], paths: ["/opt/apps/com.xunlei.download", "/opt/xunlei"]),
    ]

    /// Parses `software:`.
    public static func parse(_ node: Node, _ reader: YAMLReader) throws(MijianError) -> SoftwarePolicy {
        var policy = SoftwarePolicy()
        for (key, _, value) in try reader.mapping(node, "software", allowed: ["prohibited", "allow"]) {
            if key == "allow" {
                let known = Set(builtIn.map(\.name))
                for (index, name) in try reader.strings(value, "software.allow").enumerated() {
                    guard known.contains(name) else {
                        throw reader.error(
                            try reader.sequence(value, "software.allow")[index], "software.allow[\(index)]",
                            "\"\(name)\" is not an entry of the built-in list (software.allow exempts entries by name)")
                    }
                    policy.allowed.insert(name)
                }
                continue
            }
            for (index, element) in try reader.sequence(value, "software.prohibited").enumerated() {
                policy.added.append(try entry(element, "software.prohibited[\(index)]", reader))
            }
        }
        return policy
    }

    private static func entry(_ node: Node, _ path: String, _ reader: YAMLReader) throws(MijianError) -> Entry {
        var name: String?
        var category: Category?
        var lists: [String: [String]] = [:]
        for (key, _, value) in try reader.mapping(node, path, allowed: ["name", "category", "packages", "executables", "paths", "flatpak", "snap"]) {
            switch key {
            case "name": name = try reader.string(value, "\(path).name")
            case "category": category = try reader.choice(value, "\(path).category", as: Category.self)
            default:
                let list = try reader.strings(value, "\(path).\(key)")
                if key == "paths", let bad = list.first(where: { !$0.hasPrefix("/") || $0 == "/" }) {
                    throw reader.error(value, "\(path).paths", "\"\(bad)\" is not an absolute path below /")
                }
                lists[key] = list
            }
        }
        guard let name, !name.isEmpty else { throw reader.error(node, "\(path).name", "missing") }
        guard let category else {
            throw reader.error(node, "\(path).category", "missing (\(Category.allCases.map(\.rawValue).joined(separator: " | ")))")
        }
        let entry = Entry(
            name, category, packages: lists["packages"] ?? [], executables: lists["executables"] ?? [], paths: lists["paths"] ?? [],
            flatpak: lists["flatpak"] ?? [], snap: lists["snap"] ?? [])
        if entry.packages.isEmpty, entry.executables.isEmpty, entry.paths.isEmpty, entry.flatpak.isEmpty, entry.snap.isEmpty {
            throw reader.error(node, path, "\(name): give packages, executables, paths, flatpak or snap, or it can never be seen")
        }
        return entry
    }
}
