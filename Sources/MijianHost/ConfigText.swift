/// Lines of a configuration file as the programs that own it read them.
enum ConfigText {
    /// What the owning program does with a CR before the LF.
    enum CarriageReturn {
        /// Dropped: GKeyFile (NetworkManager, BlueZ), systemd, wpa_supplicant and ifupdown take
        /// CR LF as a line end, so a file saved with CR LF still configures them and must be seen.
        case dropped
        /// Kept in the line's last word: kmod (`blacklist btusb\r` names a module `btusb\r`) and
        /// glibc's resolver (`nameserver 8.8.8.8\r` fails its parse) do not honour such lines, and
        /// dropping the CR would count what they ignore.
        case kept
    }

    /// Lines ended by LF. Split on scalars: `"\r\n"` is one `Character`, and a split on the
    /// Character `"\n"` reads a CR LF file as one line.
    static func lines(_ text: String, carriageReturn: CarriageReturn = .dropped) -> [Substring] {
        text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { scalars in
            var line = Substring(scalars)
            if carriageReturn == .dropped, line.unicodeScalars.last == "\r" { line = Substring(line.unicodeScalars.dropLast()) }
            return line
        }
    }
}
