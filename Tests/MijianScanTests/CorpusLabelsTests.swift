import Foundation
import MijianCore
import MijianTestSupport
import Testing

/// The labelled corpus (`Tests/Fixtures/markings`, written by
/// `scripts/fixtures/make-markings-corpus.py`) and its labels agree: every labelled path is in
/// the corpus, every corpus file and archive member is labelled, and each label is well formed.
/// The precision and recall measured on the corpus mean nothing if a label names a file that is
/// not there or a file goes unlabelled.
@Suite struct CorpusLabelsTests {
    static let markings = TestSupport.repositoryRoot.appendingPathComponent("Tests/Fixtures/markings")
    static let corpus = markings.appendingPathComponent("corpus")

    /// One entry of labels.json.
    struct Label {
        var path: String
        var format: String
        var expect: String
        var level: String?
        var note: String
    }

    static let formats: Set<String> = [
        "txt", "html", "xml", "md", "docx", "xlsx", "pptx", "odt", "ods", "odp", "ofd", "wps", "doc", "pdf", "zip", "tar", "gz", "eml", "mbox",
    ]
    static let strength = ["none": 0, "mention": 1, "marking": 2]

    /// labels.json read with the strict parser: an array of objects with exactly the agreed keys.
    static func labels() throws -> [Label] {
        let bytes = try [UInt8](Data(contentsOf: markings.appendingPathComponent("labels.json")))
        guard let entries = try JSONParser().parse(bytes).arrayValue else {
            throw CorpusError("labels.json is not a JSON array")
        }
        return try entries.enumerated().map { index, entry in
            guard let members = entry.objectValue, members.map(\.0) == ["path", "format", "expect", "level", "note"],
                let path = entry["path"]?.stringValue, let format = entry["format"]?.stringValue,
                let expect = entry["expect"]?.stringValue, let note = entry["note"]?.stringValue
            else { throw CorpusError("entry \(index) does not have the keys path, format, expect, level, note as strings") }
            let level: String?
            switch entry["level"] {
            case .null?: level = nil
            case .string(let value)?: level = value
            default: throw CorpusError("entry \(index) (\(path)): level is neither a string nor null")
            }
            return Label(path: path, format: format, expect: expect, level: level, note: note)
        }
    }

    /// Every regular file under the corpus directory, relative to it.
    static func corpusFiles() throws -> Set<String> {
        guard let walker = FileManager.default.enumerator(at: corpus, includingPropertiesForKeys: [.isRegularFileKey]) else {
            throw CorpusError("cannot list \(corpus.path)")
        }
        var files = Set<String>()
        let prefix = corpus.standardizedFileURL.path + "/"
        for case let url as URL in walker where try url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile == true {
            files.insert(String(url.standardizedFileURL.path.dropFirst(prefix.count)))
        }
        return files
    }

    /// Every member of the corpus's archives (`archive.zip!dir/doc.docx`, nested members
    /// `a.zip!b.zip!c.odt`) and mail (`spool!message 2!a.xlsx`, `m.eml!a.docx`), listed by
    /// Python's zipfile, tarfile, gzip, email and mailbox, which share no code with the scanner.
    /// Members of an encrypted zip are listed by name, not opened. A message's members are its
    /// parts other than the body (the first inline text/plain, else text/html, and its
    /// alternatives), named by file name or `part N` (N counts the leaf parts from 1).
    static func archiveMembers() throws -> Set<String> {
        let lister = """
            import email, email.policy, gzip, io, mailbox, os, sys, tarfile, zipfile
            def leaves(part, out, alt=None):
                if part.get_content_maintype() == "multipart":
                    group = len(out) if part.get_content_type() == "multipart/alternative" else alt
                    for p in part.get_payload():
                        leaves(p, out, group)
                else:
                    out.append((part, alt))
            def inline_text(p):
                return p.get_content_type() in ("text/plain", "text/html") and p.get_filename() is None and p.get_content_disposition() != "attachment"
            def message(prefix, msg, depth):
                ls = []
                leaves(msg, ls)
                body = next((i for i, (p, _) in enumerate(ls) if inline_text(p) and p.get_content_type() == "text/plain"), None)
                if body is None:
                    body = next((i for i, (p, _) in enumerate(ls) if inline_text(p) and p.get_content_type() == "text/html"), None)
                for i, (p, alt) in enumerate(ls):
                    if i == body or (body is not None and ls[body][1] is not None and alt == ls[body][1] and inline_text(p)):
                        continue
                    name = (p.get_filename() or f"part {i + 1}").replace("!", "_").replace("/", "_")
                    print(prefix + "!" + name)
                    walk(prefix + "!" + name, name, p.get_payload(decode=True) or b"", depth + 1)
            def walk(prefix, name, data, depth):
                low = name.lower()
                if depth > 4:
                    return
                if data.startswith(b"From "):
                    box = mailbox.mbox(os.path.join(root, prefix), factory=lambda f: email.message_from_binary_file(f, policy=email.policy.default), create=False)
                    for i, msg in enumerate(box, 1):
                        print(f"{prefix}!message {i}")
                        message(f"{prefix}!message {i}", msg, depth)
                elif low.endswith(".eml") or "/cur/" in prefix or "/new/" in prefix:
                    message(prefix, email.message_from_bytes(data, policy=email.policy.default), depth)
                elif low.endswith(".zip"):
                    z = zipfile.ZipFile(io.BytesIO(data))
                    for i in z.infolist():
                        if i.is_dir():
                            continue
                        p = prefix + "!" + i.filename
                        print(p)
                        if not i.flag_bits & 1:
                            walk(p, i.filename, z.read(i), depth + 1)
                elif low.endswith((".tar", ".tar.gz", ".tgz")):
                    t = tarfile.open(fileobj=io.BytesIO(data))
                    for m in t.getmembers():
                        if m.isfile():
                            p = prefix + "!" + m.name
                            print(p)
                            walk(p, m.name, t.extractfile(m).read(), depth + 1)
                elif low.endswith(".gz"):
                    base = os.path.basename(name)[:-3]
                    print(prefix + "!" + base)
                    walk(prefix + "!" + base, base, gzip.decompress(data), depth + 1)
            root = sys.argv[1]
            for d, _, files in os.walk(root):
                for f in files:
                    rel = os.path.relpath(os.path.join(d, f), root)
                    if rel.lower().endswith((".zip", ".tar", ".gz", ".tgz", ".eml")) or rel.startswith("mail/"):
                        with open(os.path.join(d, f), "rb") as fh:
                            walk(rel, rel, fh.read(), 1)
            """
        let result = try TestSupport.run("/usr/bin/python3", ["-c", lister, corpus.path])
        guard result.status == 0 else { throw CorpusError("listing the archives failed: \(result.stderr)") }
        return Set(result.stdout.split(separator: "\n").map(String.init))
    }

    @Test func everyLabelIsWellFormed() throws {
        let labels = try Self.labels()
        #expect(labels.count >= 80)
        var seen = Set<String>()
        for label in labels {
            #expect(seen.insert(label.path).inserted, "labelled twice: \(label.path)")
            #expect(Self.formats.contains(label.format), "\(label.path): format \(label.format)")
            #expect(["marking", "mention", "none", "unread"].contains(label.expect), "\(label.path): expect \(label.expect)")
            #expect(!label.note.isEmpty, "\(label.path): no note")
            switch label.expect {
            case "marking", "mention":
                #expect(["秘密", "机密", "绝密"].contains(label.level ?? ""), "\(label.path): \(label.expect) without a level")
            default:
                #expect(label.level == nil, "\(label.path): \(label.expect) with a level")
            }
        }
    }

    @Test func labelsAndCorpusFilesAgree() throws {
        let labels = try Self.labels()
        let files = try Self.corpusFiles()
        let labelledFiles = Set(labels.map(\.path).filter { !$0.contains("!") })
        #expect(files.count >= 80)
        #expect(labelledFiles.subtracting(files).sorted() == [], "labelled but not in the corpus")
        #expect(files.subtracting(labelledFiles).sorted() == [], "in the corpus but not labelled")
        var bytes = 0
        for file in files {
            bytes += try Data(contentsOf: Self.corpus.appendingPathComponent(file)).count
        }
        #expect(bytes < 5 << 20, "the corpus is kept under 5 MiB (\(bytes) bytes)")
    }

    @Test func labelsAndArchiveMembersAgree() throws {
        let labels = try Self.labels()
        let byPath = Dictionary(uniqueKeysWithValues: labels.map { ($0.path, $0) })
        let members = try Self.archiveMembers()
        let labelledMembers = Set(labels.map(\.path).filter { $0.contains("!") })
        #expect(members.count >= 15)
        #expect(labelledMembers.subtracting(members).sorted() == [], "labelled member not in its archive")
        // A member needs a label unless an archive it sits in cannot be read (an encrypted zip).
        let unlabelled = members.subtracting(labelledMembers).filter { member in
            let parts = member.split(separator: "!").map(String.init)
            return !(1..<parts.count).contains { byPath[parts[0..<$0].joined(separator: "!")]?.expect == "unread" }
        }
        #expect(unlabelled.sorted() == [], "archive member without a label")
    }

    @Test func anArchiveIsLabelledWithTheStrongestOfItsMembers() throws {
        let labels = try Self.labels()
        var strongest: [String: Int] = [:]
        for label in labels where label.path.contains("!") {
            guard let rank = Self.strength[label.expect] else { continue }
            let container = String(label.path[..<(label.path.lastIndex(of: "!") ?? label.path.endIndex)])
            strongest[container] = max(strongest[container] ?? 0, rank)
        }
        #expect(strongest.count >= 8)
        for (container, rank) in strongest {
            let label = try #require(labels.first { $0.path == container }, "\(container) holds labelled members but has no label")
            #expect(Self.strength[label.expect] == rank, "\(container) is labelled \(label.expect)")
        }
    }
}

/// Why the corpus could not be read.
struct CorpusError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
