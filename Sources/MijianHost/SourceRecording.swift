import MijianCore

extension HostRoot {
    /// Lists a directory and appends what came of it (ok with a count, missing, or the error) to
    /// `sources`; nil when the directory is missing or unreadable.
    func list(_ path: String, recordingInto sources: inout [FactSource]) -> [String]? {
        do {
            let names = try list(path)
            sources.append(FactSource(path: path, state: .ok, count: names.count))
            return names
        } catch where error.code == .notFound {
            sources.append(FactSource(path: path, state: .missing, count: 0))
            return nil
        } catch {
            sources.append(FactSource(path: path, state: .error(error.description), count: 0))
            return nil
        }
    }
}
