import Foundation
import MijianAgent
import MijianCore
import MijianTestSupport
import Testing

@Suite("Agent configuration: agent.yaml")
struct ConfigurationTests {
    func parse(_ yaml: String) throws(MijianError) -> AgentConfiguration {
        try AgentConfiguration.parse(Array(yaml.utf8), file: "/etc/mijian/agent.yaml")
    }

    @Test func everyKeyIsRead() throws {
        let config = try parse("""
            delivery:
              mode: https
              url: https://10.0.0.5:8443/
              ca_file: /etc/mijian/office-ca.pem
            audit_interval: 30m
            report_interval: 5m
            debounce: 500ms
            spool: {dir: /var/spool/mijian, max_bytes: 16M}
            traffic: {enabled: false, links: [eno1, enp3s0], buffer: 8M}
            usb: {enabled: false}
            """)
        #expect(config.delivery.mode == .https)
        #expect(config.delivery.url == "https://10.0.0.5:8443")
        #expect(config.delivery.caFile == "/etc/mijian/office-ca.pem")
        #expect(config.auditInterval == .seconds(1800))
        #expect(config.reportInterval == .seconds(300))
        #expect(config.debounce == .milliseconds(500))
        #expect(config.spoolDirectory(stateDir: "/var/lib/mijian") == "/var/spool/mijian")
        #expect(config.spoolMaxBytes == 16 << 20)
        #expect(!config.trafficEnabled && config.trafficLinks == ["eno1", "enp3s0"])
        #expect(config.trafficBufferBytes == 8 << 20)
        #expect(!config.usbEnabled)
    }

    @Test func defaults() throws {
        let config = try parse("delivery: {mode: none}\n")
        #expect(config.auditInterval == .seconds(3600))
        #expect(config.reportInterval == .seconds(900))
        #expect(config.debounce == .seconds(1))
        #expect(config.spoolDirectory(stateDir: "/var/lib/mijian") == "/var/lib/mijian/spool")
        #expect(config.trafficEnabled && config.usbEnabled)
        #expect(config.trafficBufferBytes == 2 << 20)
    }

    @Test(arguments: [
        ("report_interval: 15m\nspool: {dir: /x, max_byte: 10}\n", "/etc/mijian/agent.yaml:2: spool.max_byte: unknown key", MijianError.Code.configUnknownKey),
        ("audit_interval: 1h\nreport_intervall: 1m\n", "/etc/mijian/agent.yaml:2: report_intervall: unknown key", .configUnknownKey),
        ("report_interval: 15 minutes\n", "/etc/mijian/agent.yaml:1: report_interval: expected a duration", .configInvalid),
        ("debounce: 2h\n", "/etc/mijian/agent.yaml:1: debounce: 2h is outside 0ms–1m", .configInvalid),
        ("delivery:\n  mode: carrier-pigeon\n", "/etc/mijian/agent.yaml:2: delivery.mode: expected one of https | drop_dir | none", .configInvalid),
        ("delivery:\n  mode: https\n  url: http://10.0.0.5\n  ca_file: /ca.pem\n", "/etc/mijian/agent.yaml:3: delivery.url: expected the collector's https:// base URL", .configInvalid),
        ("delivery:\n  mode: https\n  url: https://10.0.0.5\n", "/etc/mijian/agent.yaml:2: delivery.ca_file: required when delivery.mode is https", .configInvalid),
        ("delivery:\n  mode: drop_dir\n", "/etc/mijian/agent.yaml:2: delivery.drop_dir: required", .configInvalid),
        ("spool:\n  max_bytes: lots\n", "/etc/mijian/agent.yaml:2: spool.max_bytes: expected a size", .configInvalid),
        ("spool:\n  dir: relative/spool\n", "/etc/mijian/agent.yaml:2: spool.dir: expected an absolute path", .configInvalid),
        ("traffic:\n  enabled: maybe\n", "/etc/mijian/agent.yaml:2: traffic.enabled: expected true or false", .configInvalid),
        ("traffic:\n  buffer: 64K\n", "/etc/mijian/agent.yaml:2: traffic.buffer: expected a capture buffer from 256K to 1G", .configInvalid),
        ("traffic:\n  buffer: 2G\n", "/etc/mijian/agent.yaml:2: traffic.buffer: expected a capture buffer from 256K to 1G", .configInvalid),
        ("usb: [1, 2]\n", "/etc/mijian/agent.yaml:1: usb: expected a mapping", .configInvalid),
    ])
    func errorsNameFileLineAndKey(yaml: String, message: String, code: MijianError.Code) {
        #expect {
            try parse(yaml)
        } throws: { error in
            guard let error = error as? MijianError else { return false }
            #expect(error.message.hasPrefix(message), "got: \(error.message)")
            #expect(error.code == code)
            return error.message.hasPrefix(message) && error.code == code
        }
    }

    @Test func durations() {
        #expect(AgentConfiguration.duration("30s") == .seconds(30))
        #expect(AgentConfiguration.duration("15m") == .seconds(900))
        #expect(AgentConfiguration.duration("1h") == .seconds(3600))
        #expect(AgentConfiguration.duration("2d") == .seconds(172_800))
        #expect(AgentConfiguration.duration("250ms") == .milliseconds(250))
        for bad in ["", "15", "m", "1.5h", "-1s", "1 h", "1H", "٣s", "99999999999s"] {
            #expect(AgentConfiguration.duration(bad) == nil, "\(bad) parsed")
        }
        #expect(AgentConfiguration.text(.seconds(900)) == "15m")
        #expect(AgentConfiguration.text(.seconds(3600)) == "1h")
        #expect(AgentConfiguration.text(.milliseconds(1500)) == "1500ms")
        #expect(AgentConfiguration.byteSize("64M") == 64 << 20)
        #expect(AgentConfiguration.byteSize("512k") == 512 << 10)
        #expect(AgentConfiguration.byteSize("4096") == 4096)
        #expect(AgentConfiguration.byteSize("x") == nil)
    }

    @Test func theShippedExampleParses() throws {
        let path = TestSupport.repositoryRoot.appendingPathComponent("Packaging/examples/agent-https.yaml").path
        let config = try AgentConfiguration.load(path)
        #expect(config.delivery.mode == .https && config.delivery.caFile == "/etc/mijian/office-ca.pem")
        #expect(config.reportInterval == .seconds(900) && config.spoolMaxBytes == 64 << 20)
        // The conffile the package installs as /etc/mijian/agent.yaml parses too.
        let shipped = try AgentConfiguration.load(TestSupport.repositoryRoot.appendingPathComponent("Packaging/etc/agent.yaml").path)
        #expect(shipped.usbEnabled)
    }

    @Test func aMissingNamedFileIsAnErrorAndAMissingDefaultIsNot() throws {
        #expect(throws: MijianError.self) { try AgentConfiguration.load("/nonexistent/agent.yaml") }
    }
}
