import MijianCore

/// What the policy says about one interface or device.
public enum Verdict: String, Sendable, Equatable {
    /// May bind its driver.
    case allow
    /// Kept from its driver (enforce mode).
    case deny
    /// Would be kept from its driver; audit mode lets it bind and reports it.
    case wouldDeny = "would-deny"

    /// Whether the policy objects (deny or would-deny).
    public var objects: Bool { self != .allow }
}

/// The decision for one interface.
public struct InterfaceDecision: Sendable, Equatable {
    /// The interface as read from sysfs.
    public var interface: USBInterface
    /// Its kind and why.
    public var classification: InterfaceClassification
    /// Allow, deny or would-deny.
    public var verdict: Verdict
    /// One sentence for people.
    public var reason: String
    /// The rule the decision serves.
    public var rule: String

    /// Evidence form.
    public var json: JSONValue {
        [
            "name": .string(interface.name), "class": .string(interface.classTriple), "interface": .optional(interface.interfaceString),
            "driver": .optional(interface.driver), "kind": .string(classification.kind.rawValue),
            "decision": .string(verdict.rawValue), "reason": .string(reason), "rule": .string(rule),
        ]
    }
}

/// The decision for a device, interface by interface.
public struct DeviceDecision: Sendable, Equatable {
    /// The device (with its interfaces) as read from sysfs.
    public var device: USBDevice
    /// One decision per interface.
    public var interfaces: [InterfaceDecision]
    /// The ledger entry that registers it, when one does.
    public var ledgerEntry: Policy.LedgerEntry?
    /// What could not be read of the device or its interfaces (refused, looping; not absent).
    public var unreadable: [FactSource] = []
    /// Deny (would-deny in audit mode) when part of the device could not be read, else allow: a
    /// device that could not be looked at in full is unknown, and unknown is kept out.
    public var unreadableVerdict: Verdict = .allow

    /// Deny (or would-deny) the whole device: it has interfaces and the policy objects to every
    /// one, or part of it could not be read.
    public var wholeDevice: Verdict {
        if unreadableVerdict.objects { return unreadableVerdict == .deny || interfaces.contains { $0.verdict == .deny } ? .deny : .wouldDeny }
        guard !interfaces.isEmpty, interfaces.allSatisfy({ $0.verdict.objects }) else { return .allow }
        return interfaces.contains { $0.verdict == .deny } ? .deny : .wouldDeny
    }

    /// The device's overall verdict: allow only when every interface is allowed and the whole
    /// device could be read.
    public var verdict: Verdict {
        if unreadableVerdict == .deny || interfaces.contains(where: { $0.verdict == .deny }) { return .deny }
        if unreadableVerdict == .wouldDeny || interfaces.contains(where: { $0.verdict == .wouldDeny }) { return .wouldDeny }
        return .allow
    }
}

/// Applies a policy to a device's classified interfaces.
public enum USBPolicyDecider {
    /// Decides every interface of `device`. `enforce` turns objections into deny, else would-deny.
    public static func decide(
        _ device: USBDevice, policy: Policy, enforce: Bool, family: (String) -> DriverFamily?
    ) -> DeviceDecision {
        let ledger = policy.ledger.first { entry in
            guard let serial = device.serial, !serial.isEmpty else { return false }
            return entry.matches(vendor: device.vendor, product: device.product, serial: serial)
        }
        let objection: Verdict = enforce ? .deny : .wouldDeny
        // A part of the device that could not be read (an interface's class, its serial, the
        // list of its interfaces) may hide storage or a radio: every interface is kept out.
        let unreadable = device.unreadableParts
        let unknown = unreadable.isEmpty ? nil : "part of the device could not be read ("
            + unreadable.prefix(3).map { "\($0.path): \($0.errorReason ?? "unreadable")" }.joined(separator: "; ")
            + (unreadable.count > 3 ? "; and \(unreadable.count - 3) more" : "") + "), so what it is is unknown"
        var decisions: [InterfaceDecision] = []
        for interface in device.interfaces {
            let classification = USBClassifier.classify(interface, of: device, family: family)
            let kind = classification.kind
            var verdict = Verdict.allow
            var reason: String
            switch kind {
            case .storage:
                if let ledger {
                    reason = "registered medium" + (ledger.label.map { " \($0)" } ?? "") + " (\(device.ids) serial \(ledger.serial)) in the media ledger"
                } else if let serial = device.serial, !serial.isEmpty {
                    verdict = objection
                    reason = "storage \(device.ids) serial \(serial) is not in the media ledger of policy \(policy.id)"
                } else {
                    verdict = objection
                    reason = "storage \(device.ids) reports no serial number, so it cannot be matched to the media ledger"
                }
            default:
                if let allowKind = kind.allowKind {
                    if policy.usbAllow.contains(allowKind) {
                        reason = "\(kind.rawValue) interfaces are allowed by usb.allow"
                    } else {
                        verdict = objection
                        reason = "\(kind.rawValue) interfaces are not in usb.allow of policy \(policy.id)"
                    }
                } else {
                    verdict = objection
                    reason = "\(kind.rawValue) interfaces are never allowed on a \(policy.profile.rawValue) machine"
                }
            }
            if let unknown {
                verdict = objection
                reason = unknown
            }
            decisions.append(InterfaceDecision(
                interface: interface, classification: classification, verdict: verdict,
                reason: "\(classification.reason): \(reason)", rule: kind.rule.id))
        }
        var decision = DeviceDecision(device: device, interfaces: decisions, ledgerEntry: ledger)
        decision.unreadable = unreadable
        if !unreadable.isEmpty { decision.unreadableVerdict = objection }
        return decision
    }
}
