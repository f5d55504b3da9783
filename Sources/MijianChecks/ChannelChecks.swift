import MijianCore

/// `hardware.channels`: every outbound channel besides networks and radios (七.6).
public enum ChannelChecks {
    /// The checks, in catalogue order.
    public static let all: [Check] = [
        Check(rule: RuleCatalogue.hardwareChannels, needs: [.channels], evaluate: hardwareChannels)
    ]

    /// Whether the policy allows a channel of `kind`: a writer allowance covers a reader.
    static func isAllowed(_ kind: ChannelKind, _ policy: Policy) -> Bool {
        guard !ChannelKind.neverAllowed.contains(kind) else { return false }
        return policy.channelsAllow.contains(kind) || (kind == .opticalRead && policy.channelsAllow.contains(.opticalWrite))
    }

    /// Whether a driver's channel is allowed: the optical drivers serve readers and writers alike.
    static func isDriverAllowed(_ kind: ChannelKind, _ policy: Policy) -> Bool {
        kind == .opticalRead ? isAllowed(.opticalRead, policy) || isAllowed(.opticalWrite, policy) : isAllowed(kind, policy)
    }

    static func allowText(_ policy: Policy) -> String {
        policy.channelsAllow.isEmpty ? "channels.allow is empty" : "channels.allow is [\(policy.channelsAllow.sorted().map(\.rawValue).joined(separator: ", "))]"
    }

    /// Devices present against `channels.allow`, and their drivers as `wireless.modules` judges radios'.
    static func hardwareChannels(_ all: AuditFacts, _ context: CheckContext) -> [Finding] {
        let rule = RuleCatalogue.hardwareChannels
        let facts = all.channels
        let policy = context.policy
        var findings = context.sourceErrors(rule, facts.sources) { _ in true }
        let sources = context.evidence("sources", "host", .array(facts.sources.map(\.json)))
        if facts.source("/sys/class/tty")?.state == .missing {
            // Every kernel with a console has the tty class: without it the devices cannot be seen.
            findings.append(context.finding(
                rule, subject: "/sys/class/tty", status: .error,
                detail: "No /sys/class/tty under \(all.root) (no sysfs, as on an offline disk): serial ports, modems and the other channels cannot be seen, so their absence is not vouched for.",
                evidence: [sources]))
        }

        var present = 0
        for device in facts.devices {
            let data = context.evidence("sysfs", device.subject, device.json)
            if !device.unreadable.isEmpty {
                findings.append(context.finding(
                    rule, subject: device.subject, status: .error,
                    detail: "Could not read all of \(device.listedAt): \(HardwareChecks.unreadableText(device.unreadable)); so what it is (\(device.reason)) and whether the policy allows it is unknown.",
                    evidence: [data, context.evidence("sources", device.subject, .array(device.unreadable.map(\.json)))]))
                continue
            }
            present += 1
            let driver = device.driver.map { ", driver \($0)" } ?? ""
            if isAllowed(device.kind, policy) {
                findings.append(context.finding(
                    rule, subject: device.subject, status: .pass,
                    detail: "\(device.kind.label.capitalizedFirst) \(device.name) (\(device.reason)\(driver)) is present and allowed by policy \(policy.id) (channels.allow: \(device.kind.rawValue)).",
                    evidence: [data]))
            } else {
                let never = ChannelKind.neverAllowed.contains(device.kind) ? "; no policy may allow it" : "; \(allowText(policy))"
                findings.append(context.finding(
                    rule, subject: device.subject, status: .fail,
                    detail: "\(device.kind.label.capitalizedFirst) \(device.name) present (\(device.reason)\(driver)), not allowed by policy \(policy.id)\(never).",
                    evidence: [data]))
            }
        }

        findings += drivers(facts, context)
        if !findings.contains(where: { $0.status == .fail || $0.status == .error }), present == 0 {
            let placeholders = facts.placeholderPorts.isEmpty ? "" : " \(facts.placeholderPorts.count) ttyS entries have UART type 0 (no port behind them: \(HardwareChecks.list(facts.placeholderPorts)))."
            findings.append(context.finding(
                rule, subject: "host", status: .pass,
                detail: "No serial port with a UART, USB serial adapter, modem, parallel port, FireWire, PCMCIA socket, IrDA port or optical drive present (the tty, wwan, parport, printer, pcmcia_socket, irda and block classes, the firewire bus and the classes of \(facts.source("/sys/bus/pci/devices")?.count ?? 0) PCI functions examined)." + placeholders,
                evidence: [sources]))
        }
        return findings
    }

    /// Channel drivers loaded, built in, or installed and not disabled, for the kinds the policy
    /// does not allow: one finding per kind, and one per loaded driver.
    static func drivers(_ facts: ChannelFacts, _ context: CheckContext) -> [Finding] {
        let rule = RuleCatalogue.hardwareChannels
        let policy = context.policy
        var findings: [Finding] = []
        let loaded = Set(facts.loadedModules)
        let moduleSources = context.evidence("sources", "host", .array(facts.sources.filter { HardwareChecks.isModulesFile($0.path) }.map(\.json)))
        for name in facts.loadedModules {
            guard let kind = ChannelKind.drivers[name], !isDriverAllowed(kind, policy) else { continue }
            findings.append(context.finding(
                rule, subject: "module:\(name)", status: .fail,
                detail: "Driver \(name) (\(driverKindLabel(kind))) is loaded (/proc/modules); it is \(HardwareChecks.dispositionText(facts.disposition(of: name))).",
                evidence: [context.evidence("procfs", "/proc/modules", ["module": .string(name), "channel": .string(kind.rawValue)])]))
        }
        var kinds: [ChannelKind] = []
        for module in facts.modules where !kinds.contains(module.kind) { kinds.append(module.kind) }
        for kind in kinds.sorted() {
            let modules = facts.modules.filter { $0.kind == kind }
            var open: [String] = []
            var partial: [String] = []
            var builtin: [String] = []
            var running: [String] = []
            var rows: [JSONValue] = []
            for module in modules {
                let disposition = facts.disposition(of: module.name)
                let state: String
                if module.builtin {
                    state = "builtin"
                    builtin.append(module.name)
                } else if loaded.contains(module.name) {
                    state = "loaded"
                    running.append(module.name)
                } else {
                    state = HardwareChecks.dispositionName(disposition)
                    switch disposition {
                    case .disabled, .kernelBlacklisted: break
                    case .blacklisted: partial.append(module.name)
                    case .loadable: open.append(module.name)
                    }
                }
                var row: [(String, JSONValue)] = [("module", .string(module.name)), ("path", .string(module.path)), ("state", .string(state))]
                switch disposition {
                case .disabled(let directive), .blacklisted(let directive): row.append(("directive", .string(directive.location)))
                default: break
                }
                rows.append(.object(row))
            }
            let data = context.evidence("modules", "/lib/modules/\(facts.kernelRelease)", ["channel": .string(kind.rawValue), "modules": .array(rows)])
            let subject = "modules:\(kind.rawValue)"
            let builtinText = builtin.isEmpty ? "" : " Built into the kernel (modprobe.d cannot stop them; the devices above decide): \(HardwareChecks.list(builtin))."
            if isDriverAllowed(kind, policy) {
                findings.append(context.finding(
                    rule, subject: subject, status: .pass,
                    detail: "\(modules.count) \(driverKindLabel(kind)) driver(s) installed; the channel is allowed by policy \(policy.id).",
                    evidence: [data]))
            } else if open.isEmpty, partial.isEmpty, running.isEmpty {
                findings.append(context.finding(
                    rule, subject: subject, status: .pass,
                    detail: "Every loadable \(driverKindLabel(kind)) driver is disabled with `install NAME /bin/false` (or refused on the kernel command line)." + builtinText,
                    evidence: [data]))
            } else {
                var parts: [String] = []
                if !running.isEmpty { parts.append("\(running.count) loaded (\(HardwareChecks.list(running)))") }
                if !open.isEmpty { parts.append("\(open.count) not disabled at all (\(HardwareChecks.list(open)))") }
                if !partial.isEmpty { parts.append("\(partial.count) only blacklisted (\(HardwareChecks.list(partial))), which stops alias autoloading but not `modprobe NAME`") }
                findings.append(context.finding(
                    rule, subject: subject, status: .fail,
                    detail: "\(driverKindLabel(kind).capitalizedFirst) drivers installed in lib/modules/\(facts.kernelRelease) and not allowed by policy \(policy.id): " + parts.joined(separator: "; ") + ". Disable each with `install NAME /bin/false` in /etc/modprobe.d." + builtinText,
                    evidence: [data, moduleSources]))
            }
        }
        let depMissing = facts.source("/lib/modules/\(facts.kernelRelease)/modules.dep")?.state == .missing
        if depMissing, facts.source("/proc/modules")?.state == .missing {
            findings.append(context.finding(
                rule, subject: "modules", status: .informational,
                detail: "Neither /proc/modules nor lib/modules/\(facts.kernelRelease)/modules.dep exists: no channel driver can be loaded here, and which are built in cannot be listed without modules.builtin.",
                evidence: [moduleSources]))
        }
        if depMissing, facts.source("/proc/modules")?.state == .ok {
            findings.append(context.finding(
                rule, subject: "modules.dep", status: .error,
                detail: "Modules are loadable (/proc/modules exists) but lib/modules/\(facts.kernelRelease)/modules.dep is missing, so it cannot be said which serial, parallel, FireWire, PCMCIA, IrDA or optical drivers could be loaded.",
                evidence: [moduleSources]))
        }
        return findings
    }

    /// What a driver of `kind` serves (the optical drivers serve readers and writers).
    static func driverKindLabel(_ kind: ChannelKind) -> String {
        kind == .opticalRead ? "optical drive" : kind.label
    }
}

extension String {
    /// The string with its first letter upper-cased, for sentences that start with a label.
    var capitalizedFirst: String {
        guard let first else { return self }
        return first.uppercased() + dropFirst()
    }
}
