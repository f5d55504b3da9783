#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import MijianCollector
import MijianCore

/// `users`: the console's accounts.
struct UsersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users", abstract: "Manage the console's accounts (passwords are read from standard input, never the command line).",
        subcommands: [Add.self, Passwd.self, Disable.self, List.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add an account; the password is asked on the terminal, or read as one line from standard input.")
        @OptionGroup var data: DataOptions
        @Argument(help: "The login name.") var name: String
        @Option(help: "officer (may change things) or viewer (reads only).") var role: String

        func run() async throws {
            guard let role = ConsoleRole(rawValue: role) else { throw ValidationError("--role must be officer or viewer") }
            try AccountName.check(name)
            let password = try PasswordInput.read()
            try data.store().addUser(name: name, role: role, passwordHash: ConsolePasswords.hash(password), at: Date())
            try write("added \(name) (\(role.rawValue))\n")
        }
    }

    struct Passwd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set an account's password (and role); enables it again and ends its sessions.")
        @OptionGroup var data: DataOptions
        @Argument(help: "The login name.") var name: String
        @Option(help: "A new role: officer or viewer.") var role: String?

        func run() async throws {
            let newRole = try role.map { text throws -> ConsoleRole in
                guard let role = ConsoleRole(rawValue: text) else { throw ValidationError("--role must be officer or viewer") }
                return role
            }
            let password = try PasswordInput.read()
            try data.store().setPassword(name: name, passwordHash: ConsolePasswords.hash(password), role: newRole, at: Date())
            try write("changed \(name)\n")
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable an account and end its sessions.")
        @OptionGroup var data: DataOptions
        @Argument(help: "The login name.") var name: String

        func run() async throws {
            try data.store().disableUser(name: name, at: Date())
            try write("disabled \(name)\n")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the accounts.")
        @OptionGroup var data: DataOptions

        func run() async throws {
            for user in try data.store().users() {
                try write("\(user.name)  \(user.role.rawValue)\(user.disabled ? "  disabled" : "")\n")
            }
        }
    }
}

/// Login names: letters, digits and `._-`, up to 64 characters.
enum AccountName {
    static func check(_ name: String) throws {
        guard (1...64).contains(name.count), name.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0)) })
        else { throw ValidationError("an account name is 1 to 64 ASCII letters, digits, '.', '_' or '-'") }
    }
}

/// A password from the terminal (asked twice, not echoed) or one line of standard input.
enum PasswordInput {
    static func read() throws -> String {
        let password: String
        if isatty(STDIN_FILENO) == 1 {
            let first = try prompt("Password: ")
            let second = try prompt("Again: ")
            guard first == second else { throw ValidationError("the two passwords differ") }
            password = first
        } else {
            guard let line = Swift.readLine(strippingNewline: true) else { throw ValidationError("give the password as one line on standard input") }
            password = line
        }
        if let problem = ConsolePasswords.problem(password) { throw ValidationError(problem) }
        return password
    }

    private static func prompt(_ text: String) throws -> String {
        FileHandle.standardError.write(Data(text.utf8))
        var saved = termios()
        guard tcgetattr(STDIN_FILENO, &saved) == 0 else { throw MijianError(.io, "cannot read the terminal's settings", errno: errno) }
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO)
        guard tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0 else { throw MijianError(.io, "cannot turn the terminal's echo off", errno: errno) }
        defer {
            _ = tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved)
            FileHandle.standardError.write(Data("\n".utf8))
        }
        return Swift.readLine(strippingNewline: true) ?? ""
    }
}

/// Finds one machine by host id, host name or asset number.
func resolveMachine(_ text: String, store: CollectorStore) throws -> String {
    let matches = try store.machineIDs(matching: text)
    guard let first = matches.first else { throw MijianError(.notFound, "no machine with host id, host name or asset number \(text)") }
    guard matches.count == 1 else { throw MijianError(.usage, "\(matches.count) machines match \(text); give the host id: \(matches.joined(separator: ", "))") }
    return first
}

/// `reports HOST`: a machine's stored reports, newest first.
struct ReportsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "reports", abstract: "List a machine's stored reports, newest first.")
    @OptionGroup var data: DataOptions
    @Argument(help: "Host id, host name or asset number.") var host: String
    @Option(help: "Most reports listed.") var limit: Int = 20
    @Option(help: "text or json.") var format: String = "text"

    func run() async throws {
        guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 100000") }
        let store = try data.store()
        let hostID = try resolveMachine(host, store: store)
        let reports = try store.reports(hostID: hostID, limit: limit)
        switch format {
        case "json":
            try write(String(decoding: JSONValue.array(reports).prettySerialized(), as: UTF8.self))
        case "text":
            try write("EPOCH:SEQ  ISSUED                RECEIVED              OUTCOME    FAILS  SHA256\n")
            for report in reports {
                let field = { (key: String) -> String in
                    guard case .object(let members) = report, let value = members.first(where: { $0.0 == key })?.1 else { return "-" }
                    switch value {
                    case .string(let text): return text
                    case .int(let number): return String(number)
                    default: return "-"
                    }
                }
                let place = "\(field("epoch")):\(field("seq"))"
                try write("\(place.padding(toLength: 9, withPad: " ", startingAt: 0))  \(field("issued_at").padding(toLength: 20, withPad: " ", startingAt: 0))  \(field("received_at").padding(toLength: 20, withPad: " ", startingAt: 0))  \(field("outcome").padding(toLength: 9, withPad: " ", startingAt: 0))  \(field("fail_count").padding(toLength: 5, withPad: " ", startingAt: 0))  \(field("payload_sha256"))\n")
            }
        default:
            throw ValidationError("--format must be text or json")
        }
    }
}

/// `report HOST SEQ`: one stored report's verified payload, as JSON.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "report", abstract: "Print one stored report (its signed payload, indented).")
    @OptionGroup var data: DataOptions
    @Argument(help: "Host id, host name or asset number.") var host: String
    @Argument(help: "The report's seq, or EPOCH:SEQ (default epoch: the newest holding that seq).") var seq: String

    func run() async throws {
        let parts = seq.split(separator: ":", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let number = Int64(parts[parts.count - 1]), parts.count == 1 || Int64(parts[0]) != nil else {
            throw ValidationError("SEQ is a number or EPOCH:SEQ")
        }
        let epoch = parts.count == 2 ? Int64(parts[0]) : nil
        let store = try data.store()
        let hostID = try resolveMachine(host, store: store)
        guard let payload = try store.reportPayload(hostID: hostID, epoch: epoch, seq: number) else {
            throw MijianError(.notFound, "no stored report \(seq) of \(host)")
        }
        let value = try JSONParser().parse(payload)
        try write(String(decoding: value.prettySerialized(), as: UTF8.self))
    }
}
