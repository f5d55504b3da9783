import Foundation
import Logging
import MijianChecks
import MijianCore
import MijianDevices
import MijianHost
import MijianTestSupport
import Testing

/// One table for USB interfaces: every fixture device goes through the audit's rules,
/// `mijian devices` and the live control, and all three must name the same kind and decision.
@Suite("The audit, mijian devices and the live control classify alike")
struct ClassifierAgreementTests {
    static let hosts: [String] = {
        let directory = TestSupport.repositoryRoot.appendingPathComponent("Tests/Fixtures/hosts")
        return ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).sorted()
    }()

    /// name → (kind, decision) of every interface in a list of decision JSON objects.
    static func interfaces(_ decisions: [JSONValue]) -> [String: (kind: String, decision: String)] {
        var result: [String: (String, String)] = [:]
        for decision in decisions {
            for interface in decision["interfaces"]?.arrayValue ?? [] {
                guard let name = interface["name"]?.stringValue else { continue }
                result[name] = (interface["kind"]?.stringValue ?? "?", interface["decision"]?.stringValue ?? "?")
            }
        }
        return result
    }

    @Test func thereAreFixturesWithDevicesOfEveryRule() {
        #expect(Self.hosts.count >= 10, "\(Self.hosts)")
    }

    @Test(arguments: hosts)
    func everyInterfaceOfTheFixture(host: String) throws {
        let path = TestSupport.repositoryRoot.appendingPathComponent("Tests/Fixtures/hosts/\(host)").path
        let root = HostRoot(path: path)
        var logger = Logger(label: "agreement")
        logger.logLevel = .critical
        let policy = try TestSupport.defaultPolicy()

        // The audit: its facts, and the findings of the three USB rules.
        let facts = HostProbe.observe(root: root, live: false, logger: logger, collecting: AuditChecks.factSets(policy: policy))
        let context = CheckContext(policy: policy, hostID: "agreement", observedAt: Date())
        let findings = AuditChecks.evaluate(facts, context: context, only: ["usb.phone", "wireless.hardware", "usb.storage"])

        // mijian devices: a tree without a USB bus is an error there, and has no device anywhere.
        let listed = try TestSupport.run(TestSupport.productPath("mijian"), ["devices", "--root", path, "--format", "json"])
        guard FileManager.default.fileExists(atPath: path + "/sys/bus/usb/devices") else {
            #expect(listed.status == 2 && listed.stderr.contains("no USB bus"), "\(host): \(listed.stderr)")
            #expect(facts.hardware.usbDevices.isEmpty)
            return
        }
        let listing = try JSONParser().parse(Array(listed.stdout.utf8))
        let cli = Self.interfaces(listing["devices"]?.arrayValue ?? [])

        // The live control's coldplug walk.
        let knowledge = ModuleKnowledge.load(root: root, live: false, logger: logger)
        let control = USBControl(.init(root: root, policy: policy, enforce: false, knowledge: knowledge))
        let live = Self.interfaces(control.start(source: .coldplug).filter { $0.type == "usb.decision" }.map(\.data))

        var seen = 0
        for device in facts.hardware.usbDevices where !device.isRootHub {
            let phone = findings.first { $0.rule.id == "usb.phone" && $0.subject == device.sysfsPath && $0.status == .fail }
            let wireless = findings.first { $0.rule.id == "wireless.hardware" && $0.subject == device.sysfsPath && $0.status == .fail }
            let storage = findings.first { $0.rule.id == "usb.storage" && $0.subject == device.sysfsPath }
            for interface in device.interfaces {
                seen += 1
                let kind = USBClassifier.classify(interface, of: device, family: facts.hardware.family(of:)).kind
                let at = "\(host) \(interface.name) \(interface.classTriple)"
                #expect(cli[interface.name]?.kind == kind.rawValue, "\(at): mijian devices says \(cli[interface.name]?.kind ?? "nothing"), the table \(kind)")
                #expect(live[interface.name]?.kind == kind.rawValue, "\(at): the live control says \(live[interface.name]?.kind ?? "nothing"), the table \(kind)")
                #expect(cli[interface.name]?.decision == live[interface.name]?.decision, "\(at): mijian devices and the live control decide apart")
                // The audit names the interface under exactly the rule the table gives it.
                let named = { (finding: Finding?) in finding?.statusDetail.contains("interface \(interface.name) ") == true }
                #expect(named(phone) == (kind.rule.id == "usb.phone"), "\(at) \(kind): usb.phone says \(phone?.statusDetail ?? "nothing")")
                if kind == .bluetooth || kind == .wireless {
                    #expect(named(wireless), "\(at) \(kind): wireless.hardware says \(wireless?.statusDetail ?? "nothing")")
                }
                if kind == .storage {
                    // An unregistered medium: the audit fails it, the live control would deny it.
                    #expect((storage?.status == .fail) == (live[interface.name]?.decision == "would-deny"), "\(at): usb.storage \(storage?.status.rawValue ?? "nothing")")
                }
                if kind != .bluetooth, kind != .wireless, interface.interfaceClass != 0xE0 {
                    // Only its drivers' families may name it there, never the table.
                    #expect(wireless?.statusDetail.contains("USB interface \(interface.name) ") != true, "\(at) \(kind): wireless.hardware says \(wireless?.statusDetail ?? "")")
                }
            }
        }
        // Every interface of every device was looked at by all three.
        #expect(cli.count == seen && live.count == seen, "\(host): \(seen) interfaces, mijian devices \(cli.count), live \(live.count)")
    }
}
