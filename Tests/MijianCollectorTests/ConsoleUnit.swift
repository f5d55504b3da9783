import Foundation
import MijianCollector
import MijianCore
import MijianEvidence

/// A unit of three departments for the console's tests and the browser run: compliant, failing,
/// could-not-check, silent, never-reported and revoked machines, a medium that crosses from a
/// classified to an unclassified machine, and names that are attacks.
enum ConsoleUnit {
    /// A host name that tries every way out of HTML text, an attribute and a URL.
    static let hostileHost = "<script>alert(\"host\")</script>\"><img src=x onerror=alert(1)>javascript:alert(1)"
    /// A USB product string that does the same.
    static let hostileProduct = "<script>alert('usb')</script>\"><img src=x onerror=alert(2)>"
    /// A serial number that is a `javascript:` URL.
    static let hostileSerial = "javascript:alert(3)//<b>x</b>"
    /// The failing machine's asset number.
    static let failingAsset = "JSJ-666"

    struct Filled {
        var collector: Collector
        var directory: String
        var machines: [String: TestMachine]
    }

    /// Enrols and ingests the unit into a fresh store in `directory` (or a temporary one). Reports
    /// are issued relative to `now`, so states such as "silent" hold on the day the test runs.
    static func fill(directory: String? = nil, now: Date = Date()) async throws -> Filled {
        let (collector, path) = try TestUnit.collector(directory: directory)
        func day(_ offset: Double) -> Date { now.addingTimeInterval(offset * 86_400) }
        func machine(_ index: Int, _ name: String, _ asset: String, _ classification: Classification, _ department: String) throws -> TestMachine {
            let machine = try TestMachine(index: 900 + index, hostname: name, assetID: asset, classification: classification, responsible: "张三\(index)")
            machine.host.unit = department
            return machine
        }
        let office = try machine(0, "ws-office-01", "JSJ-001", .confidential, "办公室")
        let hostile = try machine(1, hostileHost, failingAsset, .confidential, "技术处")
        let finance = try machine(2, "ws-fin-01", "JSJ-101", .secret, "财务处")
        let plain = try machine(3, "pc-fin-02", "FM-102", .unclassified, "财务处")
        let silent = try machine(4, "ws-silent", "JSJ-004", .confidential, "办公室")
        let broken = try machine(5, "ws-error", "JSJ-005", .confidential, "技术处")
        let revoked = try machine(6, "ws-old", "JSJ-006", .confidential, "办公室")
        let fresh = try machine(7, "ws-new", "JSJ-007", .confidential, "办公室")
        let all = [office, hostile, finance, plain, silent, broken, revoked, fresh]
        for item in all {
            _ = try Enrolment.approve(requestBytes: try item.enrolmentRequest(at: day(-60)), note: "test", store: collector.store, now: day(-60))
        }
        func submit(_ machine: TestMachine, _ findings: [Finding], at date: Date, events: [Event] = [], policy: PolicyInfo = TestUnit.classifiedPolicy) async throws {
            let envelope = try machine.next(findings: findings, issuedAt: date, events: events, policy: policy)
            _ = try await collector.submit(envelope, source: "test", receivedAt: date.addingTimeInterval(60)).get()
        }
        func clean(_ machine: TestMachine, at date: Date, replacing rule: RuleInfo? = nil, with finding: Finding? = nil) -> [Finding] {
            machine.cleanFindings(at: date).filter { $0.rule.id != rule?.id } + (finding.map { [$0] } ?? [])
        }
        let device: JSONValue = [
            "name": "1-1", "devpath": "/devices/pci0000:00/0000:00:14.0/usb1/1-1", "vendor": "0781", "product": "5583", "serial": .string(hostileSerial),
            "manufacturer": "SanDisk", "product_name": .string(hostileProduct), "class": "00/00/00",
        ]
        let arrival = { (date: Date) in Event(type: "usb.arrival", observedAt: date, data: ["source": "udev", "seqnum": 4711, "device": device]) }
        for offset in [-5.0, -3, -1] {
            try await submit(office, clean(office, at: day(offset)), at: day(offset))
        }
        try await submit(hostile, clean(hostile, at: day(-5)), at: day(-5))
        for offset in [-3.0, -1] {
            let failure = hostile.finding(
                RuleCatalogue.usbStorage, "usb 0781:5583 \(hostileSerial)", .fail, "unregistered USB storage \(hostileProduct) is attached", at: day(offset),
                data: ["device": device, "path": .string("/sys/bus/usb/devices/1-1/\(hostileHost)")])
            try await submit(hostile, clean(hostile, at: day(offset), replacing: RuleCatalogue.usbStorage, with: failure), at: day(offset), events: [arrival(day(offset))])
        }
        let route = finance.finding(RuleCatalogue.internetRoute, "route 0.0.0.0/0", .fail, "a default route via 192.0.2.1 reaches the internet", at: day(-2), data: ["route": "default via 192.0.2.1 dev eth0"])
        try await submit(finance, clean(finance, at: day(-4)), at: day(-4))
        try await submit(finance, clean(finance, at: day(-2), replacing: RuleCatalogue.internetRoute, with: route), at: day(-2))
        try await submit(plain, clean(plain, at: day(-2)), at: day(-2), events: [arrival(day(-2))], policy: TestUnit.unclassifiedPolicy)
        try await submit(silent, clean(silent, at: day(-30)), at: day(-30))
        let error = broken.finding(RuleCatalogue.usbHistory, "kernel log", .error, "the kernel log cannot be read: permission denied", at: day(-1))
        try await submit(broken, clean(broken, at: day(-1), replacing: RuleCatalogue.usbHistory, with: error), at: day(-1))
        try await submit(revoked, clean(revoked, at: day(-2)), at: day(-2))
        try collector.store.revoke(keyid: revoked.key.keyid, at: day(-1), reason: "disk replaced")
        _ = fresh
        let machines = ["office": office, "hostile": hostile, "finance": finance, "plain": plain, "silent": silent, "error": broken, "revoked": revoked, "new": fresh]
        return Filled(collector: collector, directory: path, machines: machines)
    }
}
