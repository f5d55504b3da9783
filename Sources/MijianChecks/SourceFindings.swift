import MijianCore

extension CheckContext {
    /// Evidence observed at this check's time.
    func evidence(_ kind: String, _ source: String, _ data: JSONValue) -> Evidence {
        Evidence(kind: kind, source: source, observedAt: observedAt, data: data)
    }

    /// Error findings for the sources among `sources` that `paths` selects and that could not be read;
    /// they are never silently passed.
    func sourceErrors(_ rule: RuleInfo, _ sources: [FactSource], _ paths: (String) -> Bool) -> [Finding] {
        sources.filter { paths($0.path) }.compactMap { source in
            guard let reason = source.errorReason else { return nil }
            return finding(
                rule, subject: source.path, status: .error,
                detail: "Could not read \(source.path), so this rule cannot vouch for what it holds: \(reason).",
                evidence: [evidence("file", source.path, source.json)])
        }
    }
}
