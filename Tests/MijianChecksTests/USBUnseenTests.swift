import Foundation
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianChecks

/// USB absence is only vouched for when the USB bus was looked at.
@Suite struct USBUnseenTests {
    func statuses(_ sources: [FactSource]) throws -> (storage: [Status], phone: [Status]) {
        let facts = AuditFacts(root: "/mnt/image", live: false, observedAt: TestSupport.fixedDate, hardware: HardwareFacts(sources: sources))
        let context = CheckContext(policy: try TestSupport.defaultPolicy(), hostID: "h", observedAt: TestSupport.fixedDate)
        let storage = HardwareChecks.usbStorage(facts, context).filter { $0.subject != "usb-storage-control" }.map(\.status)
        return (storage, HardwareChecks.usbPhone(facts, context).map(\.status))
    }

    @Test func anOfflineDiskWithoutSysfsIsAnErrorNotAPass() throws {
        let result = try statuses([
            FactSource(path: "/sys/bus/pci/devices", state: .missing), FactSource(path: "/sys/class/net", state: .missing),
            FactSource(path: "/sys/bus/usb/devices", state: .missing),
        ])
        #expect(result.storage == [.error])
        #expect(result.phone == [.error])
    }

    @Test func aLiveKernelWithoutAUSBBusHasNoUSBDevice() throws {
        let result = try statuses([
            FactSource(path: "/sys/bus/pci/devices", state: .ok, count: 3), FactSource(path: "/sys/class/net", state: .ok, count: 2),
            FactSource(path: "/sys/bus/usb/devices", state: .missing),
        ])
        #expect(result.storage == [.pass])
        #expect(result.phone == [.pass])
    }

    @Test func anUnreadUSBListIsAnError() throws {
        let result = try statuses([FactSource(path: "/sys/bus/pci/devices", state: .ok, count: 3)])
        #expect(result.storage == [.error])
        #expect(result.phone == [.error])
    }
}
