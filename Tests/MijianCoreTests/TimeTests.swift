import Foundation
import MijianCore
import Testing

@Suite struct TimeTests {
    @Test func formatsUTC() {
        #expect(RFC3339.string(from: Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00Z")
        #expect(RFC3339.string(from: Date(timeIntervalSince1970: 1_795_000_000.25), fractional: true) == "2026-11-18T11:06:40.250Z")
    }

    @Test func formattingMatchesTheFormatStringAcrossTheCalendar() {
        // Every 7 days, 13 hours, 17 minutes and 0.123 s from 1970 to past 2100, with and without milliseconds,
        // against the printf form the formatter replaced; and years the fast path leaves to it.
        let reference = DateFormatter()
        reference.locale = Locale(identifier: "en_US_POSIX")
        reference.timeZone = TimeZone(identifier: "UTC")
        reference.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
        var checked = 0
        var seconds = 0.0
        while seconds < 4_200_000_000 {
            let date = Date(timeIntervalSince1970: seconds)
            let interval = date.timeIntervalSince1970
            let whole = reference.string(from: Date(timeIntervalSince1970: interval.rounded(.down)))
            #expect(RFC3339.string(from: date) == whole + "Z")
            let millis = Int(((interval - interval.rounded(.down)) * 1000).rounded(.down))
            #expect(RFC3339.string(from: date, fractional: true) == whole + String(format: ".%03dZ", millis))
            seconds += 7 * 86_400 + 13 * 3600 + 17 * 60 + 0.123
            checked += 1
        }
        #expect(checked > 6000)
        #expect(RFC3339.string(from: Date(timeIntervalSince1970: 253_402_300_800)) == "10000-01-01T00:00:00Z")
    }

    @Test func parsesOffsetsAndRejectsJunk() {
        #expect(RFC3339.date(from: "2026-11-18T11:06:40Z") == Date(timeIntervalSince1970: 1_795_000_000))
        #expect(RFC3339.date(from: "2026-11-18T19:06:40+08:00") == Date(timeIntervalSince1970: 1_795_000_000))
        #expect(RFC3339.date(from: "2026-11-18 09:46:40") == nil)
        #expect(RFC3339.date(from: "2026-13-18T09:46:40Z") == nil)
    }
}
