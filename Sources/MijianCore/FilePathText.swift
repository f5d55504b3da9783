/// Path arithmetic on plain strings, total on every input: Foundation's `NSString` path methods
/// trap on some short relative paths (a one-character name), and the paths here come from users.
/// Nothing touches the file system; `.` and `..` are kept as written, since only the kernel knows
/// what they mean once links are involved.
public enum FilePathText {
    /// The path without its trailing slashes; `/` (or all slashes) stays `/`, the empty path stays empty.
    public static func trimmed(_ path: String) -> Substring {
        var text = Substring(path)
        while text.count > 1, text.hasSuffix("/") { text.removeLast() }
        return text
    }

    /// The directory that holds `path`: `a/b` → `a`, `b` → `.`, `/b` → `/`, `a//b/` → `a`,
    /// `/` → `/`, the empty path → `.`.
    public static func parent(of path: String) -> String {
        let text = trimmed(path)
        guard let slash = text.lastIndex(of: "/") else { return "." }
        var head = text[..<slash]
        while head.hasSuffix("/") { head.removeLast() }
        return head.isEmpty ? "/" : String(head)
    }

    /// The last component of `path`: `a/b/` → `b`, `b` → `b`, `/` → `/`, the empty path → empty.
    public static func name(of path: String) -> String {
        let text = trimmed(path)
        if text == "/" { return "/" }
        guard let slash = text.lastIndex(of: "/") else { return String(text) }
        return String(text[text.index(after: slash)...])
    }

    /// `directory` and `name` joined by one slash: `a` + `b` → `a/b`, `a/` + `b` → `a/b`,
    /// `/` + `b` → `/b`, the empty directory + `b` → `b`.
    public static func join(_ directory: String, _ name: String) -> String {
        if directory.isEmpty { return name }
        if name.isEmpty { return directory }
        return directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }
}
