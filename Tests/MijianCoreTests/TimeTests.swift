import Foundation
import MijianCore
import Testing

@Suite struct TimeTests {
    @Test func formatsUTC() {
        #expect(RFC3339.string(from: Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00Z")
        #expect(RFC3339.string(from: Date(timeIntervalSince1970: 1_795_000_000.25), fractional: true) == "2026-11-18T11:06:40.250Z")
    }

    @Test func parsesOffsetsAndRejectsJunk() {
        #expect(RFC3339.date(from: "2026-11-18T11:06:40Z") == Date(timeIntervalSince1970: 1_795_000_000))
        #expect(RFC3339.date(from: "2026-11-18T19:06:40+08:00") == Date(timeIntervalSince1970: 1_795_000_000))
        #expect(RFC3339.date(from: "2026-11-18 09:46:40") == nil)
        #expect(RFC3339.date(from: "2026-13-18T09:46:40Z") == nil)
    }
}
