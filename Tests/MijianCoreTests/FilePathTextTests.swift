import MijianCore
import Testing

/// Path arithmetic that never traps, whatever string it is given.
@Suite struct FilePathTextTests {
    @Test(arguments: [
        ("", ".", ""), ("x", ".", "x"), ("xy", ".", "xy"), (".", ".", "."), ("..", ".", ".."),
        ("a/b", "a", "b"), ("a/b/", "a", "b"), ("a//b", "a", "b"), ("a//b//", "a", "b"),
        ("/", "/", "/"), ("//", "/", "/"), ("/b", "/", "b"), ("//b", "/", "b"), ("/a/b", "/a", "b"),
        ("./x", ".", "x"), ("../x", "..", "x"), ("x/.", "x", "."), ("a/b/..", "a/b", ".."),
    ])
    func parentAndName(path: String, parent: String, name: String) {
        #expect(FilePathText.parent(of: path) == parent)
        #expect(FilePathText.name(of: path) == name)
    }

    @Test func joinUsesOneSlash() {
        #expect(FilePathText.join("a", "b") == "a/b")
        #expect(FilePathText.join("a/", "b") == "a/b")
        #expect(FilePathText.join("/", "b") == "/b")
        #expect(FilePathText.join("", "b") == "b")
        #expect(FilePathText.join("a", "") == "a")
    }

    @Test func everyShortPathIsHandled() {
        // Every string of up to three characters from the ones paths are made of.
        let alphabet: [Character] = ["/", ".", "x", "é"]
        var paths = [""]
        for _ in 0..<3 { paths += paths.flatMap { path in alphabet.map { path + String($0) } } }
        for path in Set(paths) {
            let parent = FilePathText.parent(of: path)
            let name = FilePathText.name(of: path)
            #expect(!parent.isEmpty)
            let trimmed = FilePathText.trimmed(path)
            if trimmed == "/" {
                #expect(parent == "/" && name == "/")
            } else if !trimmed.contains("/") {
                #expect(parent == "." && name == String(trimmed))
            } else {
                // Rejoined, parent and name give back the path's components.
                #expect(FilePathText.join(parent, name).split(separator: "/") == trimmed.split(separator: "/"))
            }
        }
    }
}
