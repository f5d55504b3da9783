import Foundation
import MijianCore
import MijianTestSupport
import Testing

/// Hostile YAML at the one door every reader goes through (`YAMLReader.root`): alias bombs, deep
/// nesting and oversized documents are refused quickly, naming the file, line and column.
@Suite struct YAMLHostileTests {
    /// Twelve lines of anchors, each a list of ten aliases of the one before (10^11 nodes when expanded),
    /// followed by `use` (`z: {*a11: 1}` puts the expansion into a mapping key, which Yams hashes).
    static func bomb(_ use: String) -> String {
        var lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        for level in 1...11 {
            lines.append("a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]")
        }
        return (lines + [use, ""]).joined(separator: "\n")
    }

    /// The bomb as a mapping key, as a value, and 100,000 nested flow sequences.
    static let hostile: [(name: String, text: String)] = [
        ("bomb as a key", bomb("z: {*a11: 1}")),
        ("bomb as a value", bomb("z: *a11")),
        ("100,000 nested lists", "id: x\nz: " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "\n"),
    ]

    /// Runs `body` on a thread of its own and waits at most `seconds`: a reader that hangs fails the
    /// test instead of hanging the run (the thread is left spinning until the process ends).
    static func within<T: Sendable>(_ seconds: Double, _ body: @escaping @Sendable () -> T) -> T? {
        let done = DispatchSemaphore(value: 0)
        let box = Box<T>()
        let thread = Thread {
            box.value = body()
            done.signal()
        }
        thread.start()
        guard done.wait(timeout: .now() + seconds) == .success else { return nil }
        return box.value
    }

    final class Box<T: Sendable>: @unchecked Sendable {
        var value: T?
    }

    /// What parsing `text` with `parse` threw, or a description of why it did not.
    static func refusal(_ text: String, _ parse: @escaping @Sendable ([UInt8]) throws(MijianError) -> Void) -> Result<MijianError, TestFailure> {
        let outcome = within(10) { () -> Result<MijianError, TestFailure> in
            do throws(MijianError) {
                try parse(Array(text.utf8))
                return .failure(TestFailure("accepted"))
            } catch {
                return .success(error)
            }
        }
        return outcome ?? .failure(TestFailure("still parsing after 10 s"))
    }

    struct TestFailure: Error, CustomStringConvertible, Sendable {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// Every reader in this module: the policy and the host file.
    static let readers: [(name: String, parse: @Sendable ([UInt8]) throws(MijianError) -> Void)] = [
        ("policy", { bytes throws(MijianError) in _ = try Policy.parse(bytes, file: "/etc/mijian/hostile.yaml") }),
        ("host file", { bytes throws(MijianError) in _ = try HostIdentity.parse(bytes, file: "/etc/mijian/hostile.yaml") }),
    ]

    @Test func aliasBombsAndDeepNestingAreRefusedQuicklyWithFileLineAndColumn() throws {
        for reader in Self.readers {
            for (name, text) in Self.hostile {
                let started = Date()
                switch Self.refusal(text, reader.parse) {
                case .failure(let why):
                    Issue.record("\(reader.name), \(name): \(why)")
                case .success(let error):
                    // The anchor on line 1 (`a0: &a0 [...]`, column 5) is the first thing refused; the
                    // nesting on line 2, where libyaml meets its own bound of 1,000 while looking ahead.
                    if name.contains("nested") {
                        #expect(error.message.hasPrefix("/etc/mijian/hostile.yaml:2:"), "\(reader.name), \(name): \(error.message.prefix(300))")
                        #expect(error.message.contains(": lists and mappings nested deeper than 32 levels"), "\(reader.name), \(name): \(error.message.prefix(300))")
                    } else {
                        let expected = "/etc/mijian/hostile.yaml:1:5: anchor &a0: anchors (&name) and aliases (*name) are not accepted"
                        #expect(error.message.hasPrefix(expected), "\(reader.name), \(name): \(error.message.prefix(300))")
                    }
                    #expect(error.message.count < 400, "\(reader.name), \(name): the message echoes the document")
                    #expect(Date().timeIntervalSince(started) < 10)
                }
            }
        }
    }

    @Test func anAliasAloneIsRefusedAtItsLineAndColumn() throws {
        // An alias of an anchor that never was: refused where it stands, before Yams's own "undefined alias".
        let error = try #require(try? Self.refusal("id: p\nversion: \"1\"\nprofile: classified\nnetworks:\n  unit: *nets\n", Self.readers[0].parse).get())
        #expect(error.message.hasPrefix("/etc/mijian/hostile.yaml:5:9: alias *nets: anchors (&name) and aliases (*name) are not accepted"))
        #expect(error.code == .policyInvalid)
    }

    @Test func anAnchorNameIsEchoedBoundedAndEscaped() throws {
        let long = String(repeating: "n", count: 100_000)
        let error = try #require(try? Self.refusal("id: &\(long) p\n", Self.readers[0].parse).get())
        #expect(error.message.hasPrefix("/etc/mijian/hostile.yaml:1:5: anchor &" + String(repeating: "n", count: 64) + "…:"))
        #expect(error.message.count < 300)
    }

    @Test func nestingUpToTheBoundIsRead() throws {
        // 31 lists inside the top-level mapping: 32 levels, the most a document may have.
        let text = "id: p\nversion: \"1\"\nprofile: classified\nnetworks:\n  unit: []\nq: " + String(repeating: "[", count: 31) + String(repeating: "]", count: 31) + "\n"
        let error = try #require(try? Self.refusal(text, Self.readers[0].parse).get())
        #expect(error.code == .policyUnknownKey, "\(error.message)")
        let deeper = "id: p\nq: " + String(repeating: "[", count: 32) + String(repeating: "]", count: 32) + "\n"
        let refused = try #require(try? Self.refusal(deeper, Self.readers[0].parse).get())
        #expect(refused.message.hasPrefix("/etc/mijian/hostile.yaml:2:35: lists and mappings nested deeper than 32 levels"), "\(refused.message)")
    }

    @Test func aDocumentLargerThanTheBoundIsRefusedBeforeParsing() throws {
        // A comment line of 4 MiB + 1: valid YAML, refused for its size alone.
        let text = "id: p\n#" + String(repeating: "x", count: YAMLReader.maxBytes - 7) + "\n"
        #expect(text.utf8.count == YAMLReader.maxBytes + 1)
        for reader in Self.readers {
            let error = try #require(try? Self.refusal(text, reader.parse).get())
            #expect(error.code == .tooLarge, "\(reader.name): \(error.message)")
            #expect(error.message.hasPrefix("/etc/mijian/hostile.yaml: 4194305 bytes, more than the 4 MiB"), "\(reader.name): \(error.message)")
        }
    }

    @Test func syntaxErrorsStillSayWhereTheyAre() throws {
        let error = try #require(try? Self.refusal("id: [unclosed\n", Self.readers[0].parse).get())
        #expect(error.message.contains("/etc/mijian/hostile.yaml: not valid YAML: line "), "\(error.message)")
    }
}
