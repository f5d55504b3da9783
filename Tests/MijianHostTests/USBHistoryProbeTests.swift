import Foundation
import Logging
import MijianCore
import MijianTestSupport
import Testing

@testable import MijianHost

@Suite struct USBHistoryProbeTests {
    static let stickLines = """
        2026-03-02T09:15:01.100000+08:00 ws kernel: [ 812.1] usb 1-1: new high-speed USB device number 5 using xhci_hcd
        2026-03-02T09:15:01.300000+08:00 ws kernel: [ 812.3] usb 1-1: New USB device found, idVendor=0781, idProduct=5583, bcdDevice= 1.00
        2026-03-02T09:15:01.300100+08:00 ws kernel: [ 812.3] usb 1-1: New USB device strings: Mfr=1, Product=2, SerialNumber=3
        2026-03-02T09:15:01.300200+08:00 ws kernel: [ 812.3] usb 1-1: Product: Ultra Fit
        2026-03-02T09:15:01.300300+08:00 ws kernel: [ 812.3] usb 1-1: Manufacturer: SanDisk
        2026-03-02T09:15:01.300400+08:00 ws kernel: [ 812.3] usb 1-1: SerialNumber: 4C530001230615117204
        2026-03-02T09:15:01.310000+08:00 ws kernel: [ 812.4] usb-storage 1-1:1.0: USB Mass Storage device detected
        2026-03-02T09:15:01.320000+08:00 ws kernel: [ 812.4] scsi host6: usb-storage 1-1:1.0
        2026-03-02T09:15:02.000000+08:00 ws systemd[1]: Started something unrelated.
        2026-03-02T09:20:00.000000+08:00 ws kernel: [1100.0] usb 1-1: USB disconnect, device number 5

        """

    static let keyboardAndUAS = """
        Mar  3 10:00:00 ws kernel: [  10.0] usb 3-2: New USB device found, idVendor=046d, idProduct=c31c, bcdDevice=64.02
        Mar  3 10:00:00 ws kernel: [  10.0] usb 3-2: Product: USB Keyboard
        Mar  3 10:05:00 ws kernel: [ 310.0] usb 2-1: New USB device found, idVendor=152d, idProduct=0578, bcdDevice= 2.05
        Mar  3 10:05:00 ws kernel: [ 310.0] usb 2-1: SerialNumber: 0123456789ABCDEF
        Mar  3 10:05:01 ws kernel: [ 311.0] scsi host7: uas

        """

    func tree(_ files: [String: String], gzip: Set<String> = []) throws -> URL {
        let root = try TestSupport.temporaryDirectory("mijian-usbhist")
        let log = root.appendingPathComponent("var/log")
        try FileManager.default.createDirectory(at: log, withIntermediateDirectories: true)
        for (name, text) in files {
            let url = log.appendingPathComponent(name)
            try Data(text.utf8).write(to: url)
            if gzip.contains(name) {
                let result = try TestSupport.run("/bin/gzip", ["-n", url.path])
                #expect(result.status == 0)
            }
        }
        return root
    }

    @Test func readsRotatedAndCompressedKernLogsOldestFirst() throws {
        let root = try tree(["kern.log.2": Self.stickLines, "kern.log.1": Self.keyboardAndUAS, "kern.log": "garbage line\n"], gzip: ["kern.log.2"])
        defer { try? FileManager.default.removeItem(at: root) }
        let facts = USBHistoryProbe.observe(root: HostRoot(path: root.path), live: false, logger: Logger(label: "t"))
        let files = facts.sources.filter { $0.kind != "journal" }
        #expect(files.map(\.path) == ["/var/log/kern.log.2.gz", "/var/log/kern.log.1", "/var/log/kern.log"])
        #expect(files.map(\.state) == ["ok", "ok", "ok"])
        #expect(files.first?.kind == "gzip-file")
        #expect(facts.sources.last?.state == "missing")
        #expect(facts.connections.count == 3)
        let stick = try #require(facts.connections.first { $0.vendor == "0781" })
        #expect(stick.serial == "4C530001230615117204" && stick.isStorage && stick.productName == "Ultra Fit" && stick.manufacturer == "SanDisk")
        #expect(stick.time == RFC3339.date(from: "2026-03-02T01:15:01.3Z"))
        #expect(stick.source == "/var/log/kern.log.2.gz:2")
        let keyboard = try #require(facts.connections.first { $0.vendor == "046d" })
        #expect(!keyboard.isStorage)
        let uas = try #require(facts.connections.first { $0.vendor == "152d" })
        #expect(uas.isStorage && uas.serial == "0123456789ABCDEF")
        #expect(facts.reach == RFC3339.date(from: "2026-03-02T01:15:01.1Z"))
    }

    @Test func corruptGzipIsAnErrorSourceNotASilentGap() throws {
        let root = try tree(["kern.log.1": Self.stickLines], gzip: ["kern.log.1"])
        defer { try? FileManager.default.removeItem(at: root) }
        let path = root.appendingPathComponent("var/log/kern.log.1.gz")
        let bytes = try Data(contentsOf: path)
        try bytes.prefix(bytes.count / 2).write(to: path)
        let facts = USBHistoryProbe.observe(root: HostRoot(path: root.path), live: false, logger: Logger(label: "t"))
        let source = try #require(facts.sources.first)
        #expect(source.state == "error")
        #expect(source.detail.contains("truncated"))
    }

    @Test func fallsBackToSyslogAndSaysWhenNothingExists() throws {
        let syslog = try tree(["syslog": Self.stickLines])
        defer { try? FileManager.default.removeItem(at: syslog) }
        let facts = USBHistoryProbe.observe(root: HostRoot(path: syslog.path), live: false, logger: Logger(label: "t"))
        #expect(facts.sources.first?.path == "/var/log/syslog")
        #expect(facts.connections.count == 1)
        let empty = try tree([:])
        defer { try? FileManager.default.removeItem(at: empty) }
        let none = USBHistoryProbe.observe(root: HostRoot(path: empty.path), live: false, logger: Logger(label: "t"))
        #expect(none.sources.map(\.state) == ["missing", "missing"])
    }

    @Test func parserIgnoresMessagesForOtherBusesAndKeepsDevicesApart() {
        var parser = KernelLogParser()
        parser.feed(message: "usb 1-1: New USB device found, idVendor=0781, idProduct=5583, bcdDevice= 1.00", time: nil, source: "a")
        parser.feed(message: "usb 1-2: New USB device found, idVendor=18d1, idProduct=4ee7, bcdDevice= 4.40", time: nil, source: "b")
        parser.feed(message: "usb 1-2: SerialNumber: PHONE1", time: nil, source: "c")
        parser.feed(message: "usb 1-1: SerialNumber: STICK1", time: nil, source: "d")
        parser.feed(message: "usb-storage 1-1:1.0: USB Mass Storage device detected", time: nil, source: "e")
        parser.feed(message: "usb 1-1: USB disconnect, device number 5", time: nil, source: "f")
        parser.feed(message: "usb 1-1: SerialNumber: LATE", time: nil, source: "g")
        parser.feed(message: "usb 9-9: New USB device found, idVendor=zz, idProduct=1", time: nil, source: "h")
        #expect(parser.connections.count == 2)
        #expect(parser.connections[0].serial == "STICK1" && parser.connections[0].isStorage)
        #expect(parser.connections[1].serial == "PHONE1" && !parser.connections[1].isStorage)
    }

    @Test func duplicatesAcrossSourcesCountOnce() {
        let time = Date(timeIntervalSince1970: 1_000)
        let a = USBHistoryFacts.Connection(time: time, busPath: "1-1", vendor: "0781", product: "5583", serial: "S", isStorage: false, source: "kern.log:1")
        let b = USBHistoryFacts.Connection(time: time.addingTimeInterval(1), busPath: "1-1", vendor: "0781", product: "5583", serial: "S", isStorage: true, source: "journal")
        let c = USBHistoryFacts.Connection(time: time.addingTimeInterval(3600), busPath: "1-1", vendor: "0781", product: "5583", serial: "S", isStorage: true, source: "later")
        let merged = USBHistoryProbe.deduplicate([a, b, c])
        #expect(merged.count == 2)
        #expect(merged[0].isStorage)
    }

    @Test func readsKernelEntriesOfEveryBootFromAJournalFile() throws {
        let root = try tree([:])
        defer { try? FileManager.default.removeItem(at: root) }
        let journal = root.appendingPathComponent("var/log/journal")
        try FileManager.default.createDirectory(at: journal, withIntermediateDirectories: true)
        // A real journal file, written by systemd's own journal writer from export format.
        var export = ""
        for (offset, message) in ["usb 1-1: New USB device found, idVendor=0781, idProduct=5583, bcdDevice= 1.00", "usb 1-1: SerialNumber: JOURNAL1", "usb-storage 1-1:1.0: USB Mass Storage device detected"].enumerated() {
            export += "__REALTIME_TIMESTAMP=\(1_772_414_101_300_000 + offset * 100)\n__MONOTONIC_TIMESTAMP=\(812_300_000 + offset * 100)\n"
            export += "_BOOT_ID=0123456789abcdef0123456789abcdef\n_TRANSPORT=kernel\n_HOSTNAME=ws\nMESSAGE=\(message)\n\n"
        }
        export += "__REALTIME_TIMESTAMP=1772414109000000\n__MONOTONIC_TIMESTAMP=812400000\n_BOOT_ID=0123456789abcdef0123456789abcdef\n_TRANSPORT=journal\nMESSAGE=usb 1-9: New USB device found, idVendor=1111, idProduct=2222\n\n"
        let exportFile = root.appendingPathComponent("export.txt")
        try Data(export.utf8).write(to: exportFile)
        let written = try TestSupport.run("/bin/sh", ["-c", "/lib/systemd/systemd-journal-remote -o '\(journal.path)/remote.journal' - < '\(exportFile.path)'"])
        #expect(written.status == 0, "\(written.stderr)")
        let facts = USBHistoryProbe.observe(root: HostRoot(path: root.path), live: false, logger: Logger(label: "t"))
        let source = try #require(facts.sources.first { $0.kind == "journal" })
        #expect(source.state == "ok", "\(source.detail)")
        #expect(source.lines == 3)
        #expect(facts.connections.count == 1)
        #expect(facts.connections.first?.serial == "JOURNAL1")
        #expect(facts.connections.first?.isStorage == true)
        #expect(facts.connections.first?.time == Date(timeIntervalSince1970: 1_772_414_101.3))
    }

    /// A journal directory without journal files is what journalctl would make of it (ok, nothing
    /// read) without starting it; one with a file in a machine-id directory is still read.
    @Test func emptyJournalDirectoryIsReadWithoutJournalctl() throws {
        let root = try tree([:])
        defer { try? FileManager.default.removeItem(at: root) }
        let directory = root.appendingPathComponent("journal")
        let machine = directory.appendingPathComponent("0123456789abcdef0123456789abcdef")
        try FileManager.default.createDirectory(at: machine, withIntermediateDirectories: true)
        #expect(!USBHistoryProbe.hasJournalFiles(root: .live, directory: directory.path))
        let journalctl = try TestSupport.run("/usr/bin/journalctl", ["--directory=\(directory.path)", "_TRANSPORT=kernel", "-o", "json", "--no-pager", "-q"])
        #expect(journalctl.status == 0 && journalctl.stdout.isEmpty)
        var parser = KernelLogParser()
        let empty = USBHistoryProbe.readJournal(root: .live, directory: directory.path, parser: &parser, logger: Logger(label: "t"))
        #expect(empty.state == "ok" && empty.lines == 0 && empty.detail.isEmpty)

        let export = "__REALTIME_TIMESTAMP=1772414101300000\n__MONOTONIC_TIMESTAMP=812300000\n_BOOT_ID=0123456789abcdef0123456789abcdef\n_TRANSPORT=kernel\n_HOSTNAME=ws\nMESSAGE=usb 1-1: New USB device found, idVendor=0781, idProduct=5583\n\n"
        let exportFile = root.appendingPathComponent("export.txt")
        try Data(export.utf8).write(to: exportFile)
        let written = try TestSupport.run("/bin/sh", ["-c", "/lib/systemd/systemd-journal-remote -o '\(machine.path)/remote.journal' - < '\(exportFile.path)'"])
        #expect(written.status == 0, "\(written.stderr)")
        #expect(USBHistoryProbe.hasJournalFiles(root: .live, directory: directory.path))
        let read = USBHistoryProbe.readJournal(root: .live, directory: directory.path, parser: &parser, logger: Logger(label: "t"))
        #expect(read.state == "ok" && read.lines == 1)
        #expect(parser.connections.count == 1)
    }

    @Test func kmsgHeaderGivesTheTimeAndWhereTheMessageStarts() {
        let record = Array("6,1234,812345678,-,caller=T12;usb 1-1: Product: Ultra Fit\n SUBSYSTEM=usb\n".utf8)
        let header = KmsgHeader(record)
        #expect(header?.micros == 812_345_678)
        #expect(header.map { String(decoding: record[$0.bodyStart...].prefix(3), as: UTF8.self) } == "usb")
        #expect(KmsgHeader(Array("6,1,2,-".utf8)) == nil)
        #expect(KmsgHeader(Array("6,1;x".utf8)).map { [$0.micros == nil, $0.bodyStart == 4] } == [true, true])
        #expect(KmsgHeader(Array("6,1,12a,-;x".utf8))?.micros == nil)
        #expect(KmsgHeader(Array("6,1,,-;x".utf8))?.micros == nil)
        #expect(KmsgHeader(Array("6,1,99999999999999999999,-;x".utf8))?.micros == nil)
        #expect(KmsgHeader(Array("6,1,7;x".utf8)).map { [$0.micros == 7, $0.bodyStart == 6] } == [true, true])
    }

    /// The kmsg reader skips records `mayMatch` refuses: every message the parser acts on must pass.
    @Test func messagesTheParserActsOnAllPassTheByteFilter() {
        var messages: [String] = []
        for text in [Self.stickLines, Self.keyboardAndUAS] {
            for line in text.split(separator: "\n") {
                if let (_, message) = KernelLogParser.splitSyslog(line, year: 2026) { messages.append(String(message)) }
            }
        }
        messages += ["usb", "usb-storage 1-1:1.0: x", "scsi host0: uas", "usb\u{301} 1-1: New USB device found, idVendor=0781, idProduct=5583",
                     "\u{FEFF}usb 1-1: New USB device found, idVendor=0781, idProduct=5583", "USB 1-1: New USB device found, idVendor=0781, idProduct=5583",
                     " usb 1-1: New USB device found, idVendor=0781, idProduct=5583", "ｕsb 1-1: New USB device found, idVendor=0781, idProduct=5583"]
        var acted = 0
        for (index, message) in messages.enumerated() {
            // Each message after a device announcement on the same bus, so any branch can act.
            var parser = KernelLogParser()
            parser.feed(message: "usb 1-1: New USB device found, idVendor=0781, idProduct=5583", time: nil, source: "seed")
            let before = parser.connections
            parser.feed(message: Substring(message), time: nil, source: "m\(index)")
            let changed = parser.connections != before
            if changed { acted += 1 }
            #expect(!changed || KernelLogParser.mayMatch(Array(message.utf8)), "\(message)")
        }
        #expect(acted >= 5)
        #expect(!KernelLogParser.mayMatch(Array("USB 1-1: x".utf8)) && !KernelLogParser.mayMatch(Array(" usb".utf8)))
    }

    @Test func liveProbeReadsTheRingBuffer() {
        let facts = USBHistoryProbe.observe(root: .live, live: true, logger: Logger(label: "t"))
        let kmsg = facts.sources.first { $0.kind == "kmsg" }
        #expect(kmsg?.state == "ok")
        #expect((kmsg?.lines ?? 0) > 0)
    }
}
