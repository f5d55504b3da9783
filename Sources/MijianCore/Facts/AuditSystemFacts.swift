import Foundation

/// One line of an audit rules file, as `auditctl -R` would read it.
public struct AuditRuleLine: Sendable, Equatable {
    /// The file.
    public var file: String
    /// Its line number (from 1).
    public var line: Int
    /// The rule, trimmed.
    public var text: String

    /// Makes a record.
    public init(file: String, line: Int, text: String) {
        self.file = file
        self.line = line
        self.text = text
    }

    /// `file:line`.
    public var location: String { "\(file):\(line)" }

    /// The words of the rule.
    public var words: [String] { text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init) }
}

/// A `key = value` line of a configuration file.
public struct ConfigSetting: Sendable, Equatable {
    /// The key, lower-cased.
    public var key: String
    /// The value as written.
    public var value: String
    /// `file:line`.
    public var location: String

    /// Makes a record.
    public init(key: String, value: String, location: String) {
        self.key = key
        self.value = value
        self.location = location
    }
}

/// What the running kernel's audit subsystem reports (`AUDIT_GET`, `AUDIT_LIST_RULES`).
public struct AuditKernelStatus: Sendable, Equatable {
    /// 0 off, 1 on, 2 on with the rules locked until reboot (`-e 2`).
    public var enabled: Int
    /// The pid of the audit daemon the kernel sends records to; 0 when none.
    public var daemonPID: Int
    /// How many records may wait for the daemon.
    public var backlogLimit: Int
    /// Records lost since boot.
    public var lost: Int
    /// Rules loaded.
    public var rules: Int

    /// Makes a record.
    public init(enabled: Int, daemonPID: Int, backlogLimit: Int, lost: Int, rules: Int) {
        self.enabled = enabled
        self.daemonPID = daemonPID
        self.backlogLimit = backlogLimit
        self.lost = lost
        self.rules = rules
    }

    /// Evidence form.
    public var json: JSONValue {
        ["enabled": .integer(enabled), "daemon_pid": .integer(daemonPID), "backlog_limit": .integer(backlogLimit), "lost": .integer(lost), "rules": .integer(rules)]
    }
}

/// The Linux audit system: the kernel command line, the rules auditd loads, `auditd.conf` and
/// where the records go besides the local log.
public struct AuditSystemFacts: Sendable, Equatable {
    /// Where auditd's configuration lives.
    public static let conf = "/etc/audit/auditd.conf"
    /// The rules file auditd loads (what `augenrules` compiles from `rules.d`).
    public static let rulesFile = "/etc/audit/audit.rules"
    /// The rules directory `augenrules` compiles.
    public static let rulesDirectory = "/etc/audit/rules.d"

    /// Every source read, with its outcome.
    public var sources: [FactSource]
    /// The running kernel's command line (`/proc/cmdline`), when there is one.
    public var commandLine: String?
    /// `GRUB_CMDLINE_LINUX` and `GRUB_CMDLINE_LINUX_DEFAULT` settings of `/etc/default/grub` and `grub.d`.
    public var grubCommandLines: [ConfigSetting]
    /// Rules of `/etc/audit/audit.rules`.
    public var compiledRules: [AuditRuleLine]
    /// Rules of `rules.d/*.rules`, in the order `augenrules` joins them.
    public var ruleFragments: [AuditRuleLine]
    /// `auditd.conf` settings.
    public var settings: [ConfigSetting]
    /// Dispatcher plugins switched on (`active = yes` in `/etc/audit/plugins.d/*.conf`), by file.
    public var activePlugins: [ConfigSetting]
    /// `remote_server` of `audisp-remote.conf`, when set.
    public var remoteServer: ConfigSetting?
    /// The live kernel's audit status; nil under a root, or when the kernel would not say (`kernelProblem`).
    public var kernel: AuditKernelStatus?
    /// Why the live kernel's audit status could not be read.
    public var kernelProblem: String?

    /// Makes facts; all empty by default.
    public init(sources: [FactSource] = [], commandLine: String? = nil, grubCommandLines: [ConfigSetting] = [], compiledRules: [AuditRuleLine] = [], ruleFragments: [AuditRuleLine] = [], settings: [ConfigSetting] = [], activePlugins: [ConfigSetting] = [], remoteServer: ConfigSetting? = nil) {
        self.sources = sources
        self.commandLine = commandLine
        self.grubCommandLines = grubCommandLines
        self.compiledRules = compiledRules
        self.ruleFragments = ruleFragments
        self.settings = settings
        self.activePlugins = activePlugins
        self.remoteServer = remoteServer
    }

    /// The rules auditd loads at start: `rules.d` when it holds rules (Debian's auditd.service
    /// runs `augenrules --load`, which rebuilds `audit.rules` from it), else `audit.rules`.
    public var loadedRules: [AuditRuleLine] { ruleFragments.isEmpty ? compiledRules : ruleFragments }

    /// The last value of an `auditd.conf` key (auditd keeps the last).
    public func setting(_ key: String) -> ConfigSetting? { settings.last { $0.key == key } }

    /// The recorded outcome for a source path.
    public func source(_ path: String) -> FactSource? { sources.first { $0.path == path } }
}
