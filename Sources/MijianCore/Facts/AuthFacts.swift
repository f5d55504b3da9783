/// One setting of a configuration file (`key = value`, `KEY value`, `Key value`) and where it stands.
public struct AuthSetting: Sendable, Equatable {
    /// The key as written (case kept; callers compare as the owning program does).
    public var key: String
    /// The value, empty for a bare flag.
    public var value: String
    /// The host path of the file.
    public var file: String
    /// 1-based line number.
    public var line: Int

    /// Makes a setting.
    public init(key: String, value: String, file: String, line: Int) {
        self.key = key
        self.value = value
        self.file = file
        self.line = line
    }

    /// `file:line`.
    public var location: String { "\(file):\(line)" }

    /// Evidence form.
    public var json: JSONValue { ["key": .string(key), "value": .string(value), "at": .string(location)] }
}

/// One module line of a PAM stack, after `@include`, `include` and `substack` were followed.
public struct PAMLine: Sendable, Equatable {
    /// `auth`, `account`, `password` or `session` (without a leading `-`).
    public var type: String
    /// The control: `required`, `requisite`, `sufficient`, `optional` or a `[value=action …]` bracket.
    public var control: String
    /// The module's name without directory and `.so` (`pam_unix`).
    public var module: String
    /// The module's arguments, in order.
    public var options: [String]
    /// Where the line is (`/etc/pam.d/common-auth:17`).
    public var location: String

    /// Makes a line.
    public init(type: String, control: String, module: String, options: [String], location: String) {
        self.type = type
        self.control = control
        self.module = module
        self.options = options
        self.location = location
    }

    /// Whether a failure of the module fails the stack: `required`, `requisite`, or a bracket whose
    /// `default` is `bad` or `die`. A module of any other control can be passed by (`sufficient`,
    /// `optional`, Debian's `[success=N default=ignore]` primary block, where any one module suffices).
    public var isMandatory: Bool {
        switch control {
        case "required", "requisite": return true
        default:
            guard control.hasPrefix("[") else { return false }
            let actions = control.dropFirst().dropLast().split(separator: " ")
            return actions.contains { $0 == "default=bad" || $0 == "default=die" }
        }
    }

    /// The value of a `name=value` argument (the last one wins, as the modules parse them).
    public func option(_ name: String) -> String? {
        options.last { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) }
    }

    /// Whether a bare argument is present.
    public func has(_ flag: String) -> Bool { options.contains(flag) }

    /// Evidence form.
    public var json: JSONValue {
        ["type": .string(type), "control": .string(control), "module": .string(module), "options": .strings(options), "at": .string(location)]
    }
}

/// One PAM service file (`/etc/pam.d/login`) with its includes flattened.
public struct PAMService: Sendable, Equatable {
    /// The service name (`login`, `common-password`).
    public var name: String
    /// Every module line in the order PAM runs them.
    public var lines: [PAMLine]

    /// Makes a service.
    public init(name: String, lines: [PAMLine]) {
        self.name = name
        self.lines = lines
    }

    /// The lines of one type.
    public func stack(_ type: String) -> [PAMLine] { lines.filter { $0.type == type } }
}

/// A second authentication factor a PAM module provides.
public enum AuthFactor: String, Sendable, CaseIterable, Hashable, Comparable {
    /// A password (pam_unix and the like).
    case password
    /// A USB key or IC card: `pam_pkcs11`, `pam_p11`, `pam_u2f`, `pam_sss` with smart cards is not counted.
    case token
    /// A fingerprint or another biometric: `pam_fprintd`.
    case biometric

    /// The factor a module provides, when it provides one besides passwords.
    public static func of(module: String) -> AuthFactor? {
        switch module {
        case "pam_pkcs11", "pam_p11", "pam_u2f", "pam_yubico": return .token
        case "pam_fprintd", "pam_biometric", "pam_howdy": return .biometric
        default: return nil
        }
    }

    /// Declaration order.
    public static func < (lhs: AuthFactor, rhs: AuthFactor) -> Bool {
        (allCases.firstIndex(of: lhs) ?? 0) < (allCases.firstIndex(of: rhs) ?? 0)
    }
}

/// A local account: `/etc/passwd` with what `/etc/shadow` says of its password. The hash itself is
/// never kept: only whether the field is empty, locked or holds a hash, and the ageing fields.
public struct LocalAccount: Sendable, Equatable {
    /// What the shadow password field holds.
    public enum PasswordState: String, Sendable, Equatable {
        /// Empty: anyone may log in without a password where PAM allows `nullok`.
        case empty
        /// `!` or `*` first: no password login.
        case locked
        /// A hash: password login works.
        case usable
        /// No shadow entry, or `/etc/shadow` was not read.
        case unknown
    }

    /// The login name.
    public var name: String
    /// The UID.
    public var uid: Int
    /// The login shell.
    public var shell: String
    /// `x` in passwd means the shadow file holds it; anything else is a password in passwd itself.
    public var passwdField: PasswordState
    /// What shadow's field 2 holds.
    public var password: PasswordState
    /// Shadow field 5, maximum days between changes; nil when empty (never expires).
    public var maxDays: Int?
    /// Where the passwd line is.
    public var location: String

    /// Makes an account.
    public init(name: String, uid: Int, shell: String, passwdField: PasswordState, password: PasswordState, maxDays: Int?, location: String) {
        self.name = name
        self.uid = uid
        self.shell = shell
        self.passwdField = passwdField
        self.password = password
        self.maxDays = maxDays
        self.location = location
    }

    /// Shells that refuse a login.
    public static let noLoginShells: Set<String> = ["/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false", "/bin/sync", ""]

    /// Whether the account can open a shell session.
    public var hasLoginShell: Bool { !LocalAccount.noLoginShells.contains(shell) }

    /// Evidence form (never the password field itself).
    public func json(interactive: Bool) -> JSONValue {
        [
            "name": .string(name), "uid": .integer(uid), "shell": .string(shell), "password": .string(password.rawValue),
            "max_days": maxDays.map { .integer($0) } ?? .null, "interactive": .bool(interactive), "at": .string(location),
        ]
    }
}

/// sshd: whether it is there and what its configuration says.
public struct SSHDFacts: Sendable, Equatable {
    /// The sshd binary found (`/usr/sbin/sshd`), if any.
    public var binary: String?
    /// Enabled units (`ssh.service`, `ssh.socket`, `sshd.service`) as links under `/etc/systemd/system`.
    public var enabledUnits: [String]
    /// Global settings, first occurrence of each keyword (lower-cased), as sshd takes them.
    public var settings: [String: AuthSetting]
    /// `Match` blocks seen (their settings apply only to some connections and are not taken here).
    public var matchBlocks: [String]

    /// Makes facts; empty by default.
    public init(binary: String? = nil, enabledUnits: [String] = [], settings: [String: AuthSetting] = [:], matchBlocks: [String] = []) {
        self.binary = binary
        self.enabledUnits = enabledUnits
        self.settings = settings
        self.matchBlocks = matchBlocks
    }

    /// Whether sshd is installed or enabled.
    public var present: Bool { binary != nil || !enabledUnits.isEmpty }
}

/// A desktop environment whose screen lock the rule knows how to read.
public enum DesktopKind: String, Sendable, CaseIterable, Hashable, Comparable {
    /// GNOME (and its flashback and classic sessions, Ubuntu's session).
    case gnome
    /// Kylin's UKUI.
    case ukui
    /// UOS / Deepin DDE.
    case dde
    /// xscreensaver, which any X session can run.
    case xscreensaver
    /// A session whose lock Mijian does not read (Xfce, KDE, MATE …).
    case other

    /// Declaration order.
    public static func < (lhs: DesktopKind, rhs: DesktopKind) -> Bool {
        (allCases.firstIndex(of: lhs) ?? 0) < (allCases.firstIndex(of: rhs) ?? 0)
    }

    /// The kind of a session file under `/usr/share/xsessions` or `wayland-sessions`.
    public static func of(session file: String) -> DesktopKind {
        let name = file.lowercased()
        if name.hasPrefix("gnome") || name.hasPrefix("ubuntu") { return .gnome }
        if name.hasPrefix("ukui") { return .ukui }
        if name.hasPrefix("deepin") || name.hasPrefix("dde") { return .dde }
        return .other
    }
}

/// One value of a dconf database or a GSettings default, in GVariant text form (`uint32 900`, `true`).
public struct DconfValue: Sendable, Equatable {
    /// The dconf path (`/org/gnome/desktop/session/idle-delay`).
    public var key: String
    /// GVariant text (`uint32 900`, `true`, `5`).
    public var value: String
    /// Where it was read (`/etc/dconf/db/local`, `/etc/dconf/db/local.d/00-screensaver:3`).
    public var source: String

    /// Makes a value.
    public init(key: String, value: String, source: String) {
        self.key = key
        self.value = value
        self.source = source
    }

    /// The number in the text (`uint32 900` → 900), when it is one.
    public var integer: Int? { value.split(separator: " ").last.flatMap { Int($0) } }

    /// `true` or `false`, when it is a boolean.
    public var boolean: Bool? { value == "true" ? true : value == "false" ? false : nil }

    /// Evidence form.
    public var json: JSONValue { ["key": .string(key), "value": .string(value), "source": .string(source)] }
}

/// One system dconf database named by the user profile.
public struct DconfDatabase: Sendable, Equatable {
    /// Its name (`local`).
    public var name: String
    /// Whether `/etc/dconf/db/<name>` (the compiled file dconf reads) was read and parsed.
    public var compiled: Bool
    /// Values of the compiled file, or of the keyfiles when there is no compiled file.
    public var values: [DconfValue]
    /// Locked keys of the compiled file (or of `locks/` when there is no compiled file).
    public var locks: [String]
    /// Values of the keyfiles under `<name>.d/` (what `dconf update` would compile).
    public var keyfileValues: [DconfValue]
    /// Locks listed under `<name>.d/locks/`.
    public var keyfileLocks: [String]

    /// Makes a database record.
    public init(name: String, compiled: Bool = false, values: [DconfValue] = [], locks: [String] = [], keyfileValues: [DconfValue] = [], keyfileLocks: [String] = []) {
        self.name = name
        self.compiled = compiled
        self.values = values
        self.locks = locks
        self.keyfileValues = keyfileValues
        self.keyfileLocks = keyfileLocks
    }
}

/// A `TMOUT` assignment in a shell start-up file.
public struct ShellTimeout: Sendable, Equatable {
    /// The value in seconds, when it is a number.
    public var seconds: Int?
    /// As written.
    public var text: String
    /// Whether the file makes it read-only (`readonly TMOUT`, `declare -r`, `typeset -r`).
    public var readonly: Bool
    /// Where.
    public var location: String

    /// Makes a record.
    public init(seconds: Int?, text: String, readonly: Bool, location: String) {
        self.seconds = seconds
        self.text = text
        self.readonly = readonly
        self.location = location
    }

    /// Evidence form.
    public var json: JSONValue { ["value": .string(text), "readonly": .bool(readonly), "at": .string(location)] }
}

/// Screen and console locks: which desktops are installed and what their system settings say.
public struct ScreenLockFacts: Sendable, Equatable {
    /// Session files found (`/usr/share/xsessions/gnome.desktop`) with their kind.
    public var sessions: [(path: String, kind: DesktopKind)]
    /// Desktops found installed by their programs (`/usr/bin/gnome-shell` …) besides session files.
    public var programs: [(path: String, kind: DesktopKind)]
    /// The system databases the dconf `user` profile names, in order; nil when there is no profile
    /// (dconf then reads the user's own database alone, and no system setting or lock applies).
    public var profileDatabases: [String]?
    /// Where the profile was read.
    public var profilePath: String?
    /// The databases the profile names.
    public var databases: [DconfDatabase]
    /// Defaults from `*.gschema.override` files and the schemas' own `<default>`s, as dconf paths.
    public var defaults: [DconfValue]
    /// xscreensaver's system resources (`timeout`, `lock`, `lockTimeout`) from its app-defaults file.
    public var xscreensaver: [AuthSetting]
    /// `TMOUT` assignments in `/etc/profile`, `/etc/profile.d/*.sh` and `/etc/bash.bashrc`.
    public var timeouts: [ShellTimeout]

    /// Makes facts; empty by default.
    public init(sessions: [(path: String, kind: DesktopKind)] = [], programs: [(path: String, kind: DesktopKind)] = [], profileDatabases: [String]? = nil, profilePath: String? = nil, databases: [DconfDatabase] = [], defaults: [DconfValue] = [], xscreensaver: [AuthSetting] = [], timeouts: [ShellTimeout] = []) {
        self.sessions = sessions
        self.programs = programs
        self.profileDatabases = profileDatabases
        self.profilePath = profilePath
        self.databases = databases
        self.defaults = defaults
        self.xscreensaver = xscreensaver
        self.timeouts = timeouts
    }

    /// The desktops installed.
    public var desktops: Set<DesktopKind> { Set(sessions.map(\.kind) + programs.map(\.kind)) }

    /// Equal when every field is.
    public static func == (lhs: ScreenLockFacts, rhs: ScreenLockFacts) -> Bool {
        lhs.sessions.map(\.path) == rhs.sessions.map(\.path) && lhs.sessions.map(\.kind) == rhs.sessions.map(\.kind)
            && lhs.programs.map(\.path) == rhs.programs.map(\.path) && lhs.programs.map(\.kind) == rhs.programs.map(\.kind)
            && lhs.profileDatabases == rhs.profileDatabases && lhs.profilePath == rhs.profilePath && lhs.databases == rhs.databases
            && lhs.defaults == rhs.defaults && lhs.xscreensaver == rhs.xscreensaver && lhs.timeouts == rhs.timeouts
    }
}

/// Identity and access: PAM stacks, password quality and ageing, lockout, accounts, sshd, screen locks.
public struct AuthFacts: Sendable, Equatable {
    /// Every source read, with its outcome.
    public var sources: [FactSource]
    /// PAM services read (the login services present, `passwd`, and the `common-*` files).
    public var pam: [PAMService]
    /// `pwquality.conf.d/*.conf` then `pwquality.conf`, in the order libpwquality reads them.
    public var pwquality: [AuthSetting]
    /// `faillock.conf` settings.
    public var faillock: [AuthSetting]
    /// `login.defs` settings.
    public var loginDefs: [AuthSetting]
    /// Accounts of `/etc/passwd` with their shadow state.
    public var accounts: [LocalAccount]
    /// sshd.
    public var sshd: SSHDFacts
    /// Screen and console locks.
    public var screen: ScreenLockFacts

    /// Makes facts; empty by default.
    public init(sources: [FactSource] = [], pam: [PAMService] = [], pwquality: [AuthSetting] = [], faillock: [AuthSetting] = [], loginDefs: [AuthSetting] = [], accounts: [LocalAccount] = [], sshd: SSHDFacts = SSHDFacts(), screen: ScreenLockFacts = ScreenLockFacts()) {
        self.sources = sources
        self.pam = pam
        self.pwquality = pwquality
        self.faillock = faillock
        self.loginDefs = loginDefs
        self.accounts = accounts
        self.sshd = sshd
        self.screen = screen
    }

    /// The recorded outcome for a source path.
    public func source(_ path: String) -> FactSource? { sources.first { $0.path == path } }

    /// A PAM service by name.
    public func service(_ name: String) -> PAMService? { pam.first { $0.name == name } }

    /// The last value of a `login.defs` key (login.defs keys are upper case; the last line wins in shadow's getdef).
    public func loginDef(_ key: String) -> AuthSetting? { loginDefs.last { $0.key == key } }

    /// The services a person logs in through that are present; PAM falls back to `other` for the rest.
    public static let loginServices = ["login", "gdm-password", "lightdm", "sddm", "lxdm", "xdm", "ukui-greeter", "deepin-auth", "sshd"]
}

extension Reference {
    /// A recommendation of the CIS Debian Linux 12 Benchmark (ids as ComplianceAsCode's `cis_debian12` control file numbers them).
    fileprivate static func cisDebian12(_ id: String) -> Reference { Reference(system: "cis-debian-12", id: id) }
    /// A rule of the DISA STIG for Ubuntu 22.04 LTS (`UBTU-22-…`).
    fileprivate static func stigUbuntu2204(_ id: String) -> Reference { Reference(system: "stig-ubuntu-22.04", id: id) }
}

extension RuleCatalogue {
    /// Passwords (length, classes, age) and second factors meet what the host's classification level requires.
    public static let authPassword = RuleInfo(
        id: "auth.password", title: "Authentication meets the classification level's rule", titleZH: "身份鉴别符合密级要求",
        references: [
            .item("七.6"), .cisDebian12("5.3.2.3"), .cisDebian12("5.3.3.2.2"), .cisDebian12("5.3.3.2.3"), .cisDebian12("5.3.3.2.7"),
            .cisDebian12("5.4.1.1"), .stigUbuntu2204("UBTU-22-611035"), .stigUbuntu2204("UBTU-22-611045"), .stigUbuntu2204("UBTU-22-411030"),
            .stigUbuntu2204("UBTU-22-612020"),
        ], defaultSeverity: .high)
    /// pam_faillock locks an account after repeated failures.
    public static let authLockout = RuleInfo(
        id: "auth.lockout", title: "Accounts lock after repeated failed logins", titleZH: "登录失败锁定",
        references: [.item("七.6"), .cisDebian12("5.3.2.2"), .cisDebian12("5.3.3.1.1"), .cisDebian12("5.3.3.1.2"), .stigUbuntu2204("UBTU-22-411045")],
        defaultSeverity: .medium)
    /// No empty passwords, no second UID 0, no `nullok`, no remote root login.
    public static let authAccounts = RuleInfo(
        id: "auth.accounts", title: "No empty passwords, second superuser or remote login the policy does not allow", titleZH: "无空口令、多余超级用户或违规远程登录",
        references: [
            .item("七.6"), .cisDebian12("7.2.2"), .cisDebian12("5.4.2.1"), .cisDebian12("5.3.3.4.1"), .cisDebian12("5.1.19"), .cisDebian12("5.1.20"),
            .stigUbuntu2204("UBTU-22-611060"), .stigUbuntu2204("UBTU-22-611065"), .stigUbuntu2204("UBTU-22-255025"),
        ], defaultSeverity: .high)
    /// Every desktop installed locks when idle, and users cannot turn it off; text consoles time out.
    public static let authScreenlock = RuleInfo(
        id: "auth.screenlock", title: "Screens lock when idle and users cannot turn it off", titleZH: "离开时屏幕锁定",
        references: [
            .item("七.6"), .cisDebian12("1.7.4"), .cisDebian12("1.7.5"), .cisDebian12("5.4.3.2"), .stigUbuntu2204("UBTU-22-271025"),
            .stigUbuntu2204("UBTU-22-412030"),
        ], defaultSeverity: .medium)
}
