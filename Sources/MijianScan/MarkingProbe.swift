import Foundation
import MijianCore

/// The scan of a policy's `markings` scope, as `data.markings` judges it: the paths of the scope
/// that do not exist on this machine (no `/run/media` on a server) are absent, not errors.
public enum MarkingProbe {
    /// Scans `paths` (given by a person: one that does not exist is an error) or else the policy's
    /// scope under `root`, with the index kept in `stateDir` when given; the scope's exclusions
    /// and limits hold either way.
    public static func observe(root: String, policy: Policy, paths: [String]? = nil, stateDir: String?, pdf: PDFText = PDFText()) -> MarkingFacts {
        var options = ScanOptions(paths: paths ?? policy.markings.paths)
        options.exclude = policy.markings.exclude
        options.maxDepth = policy.markings.maxDepth
        options.limits.fileBytes = Int64(policy.markings.maxFileBytes)
        options.limits.depth = policy.markings.archiveDepth
        options.absentPathsAreErrors = paths != nil
        var notes: [String] = []
        var index: ScanIndex?
        if let stateDir {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: stateDir, isDirectory: &isDirectory), isDirectory.boolValue {
                index = ScanIndex(path: stateDir + "/" + ScanIndex.fileName(root: root))
            } else {
                notes.append("no index kept: the state directory \(stateDir) does not exist")
            }
        }
        var facts = Scanner(root: root, options: options, pdf: pdf, index: index).run()
        if let index {
            do { try index.save() } catch { notes.append("the index could not be saved: \(error)") }
        }
        facts.notes += notes
        return facts
    }
}
