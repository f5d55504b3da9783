import ArgumentParser
import Foundation
import MijianCore
import MijianEvidence
import MijianHost

/// `mijian enroll`: an enrolment request as a file, for the office's registry.
struct EnrollCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll",
        abstract: "Write an enrolment request signed by this machine's key (and by the previous key when rotating).",
        discussion: """
            The request is a DSSE envelope carrying the public key, the host identity and the agent version. \
            Carry it to the secrecy office as a file; it needs no network.
            """
    )

    @OptionGroup var location: KeyDirOptions

    @Option(name: .long, help: ArgumentHelp("Write the request to FILE.", valueName: "FILE"))
    var output: String

    @Option(name: .customLong("previous-key"), help: ArgumentHelp("The replaced private key file; it signs the request too (rotation).", valueName: "OLD"))
    var previousKey: String?

    @Option(name: .customLong("host-file"), help: ArgumentHelp("Host identity YAML (default: /etc/mijian/host.yaml when present).", valueName: "FILE"))
    var hostFile: String?

    @Option(name: .long, help: ArgumentHelp("Read host files under DIR instead of /.", valueName: "DIR"))
    var root: String?

    func run() async throws {
        let store = try location.store()
        let key = try store.signingKey()
        let previous = try previousKey.map { path throws(MijianError) in try SigningKey.load(from: path) }
        let hostRoot = HostRoot(path: root ?? "/")
        try hostRoot.check()
        let host = try HostProbe.hostInfo(root: hostRoot, identity: try AuditRun.loadIdentity(hostFile, root: hostRoot))
        let envelope = try EnrolmentRequest.signed(key: key, previous: previous, host: host)
        try AtomicFile.writeOutput(envelope.serialized(), to: output, mode: 0o644)
        var text = "wrote \(output): enrolment request for \(key.keyid) (host \(host.hostname), host_id \(host.hostID.prefix(16))…)\n"
        if let previous { text += "also signed by the previous key \(previous.keyid)\n" }
        text += "Carry it to the secrecy office; check it there with `mijian verify \(output) --registry REGISTRY`.\n"
        try Console.out(text)
    }
}
