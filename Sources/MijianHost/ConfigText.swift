/// Lines of a configuration file as the programs that own it read them.
enum ConfigText {
    /// Lines ended by LF, with one CR before the LF dropped: GKeyFile (NetworkManager, BlueZ),
    /// systemd, wpa_supplicant and ifupdown all take CR LF as a line end, so a file saved with
    /// CR LF still configures them and must still be seen. Split on scalars: `"\r\n"` is one
    /// `Character`, and a split on the Character `"\n"` would read such a file as one line.
    static func lines(_ text: String) -> [Substring] {
        text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { scalars in
            var line = Substring(scalars)
            if line.unicodeScalars.last == "\r" { line = Substring(line.unicodeScalars.dropLast()) }
            return line
        }
    }
}
