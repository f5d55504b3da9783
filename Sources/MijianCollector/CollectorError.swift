import MijianCore

extension MijianError.Code {
    /// The collector's database could not be opened, migrated, read or written.
    public static let database = MijianError.Code("collector.database")
    /// An enrolment request could not be approved.
    public static let enrolment = MijianError.Code("collector.enrolment")
    /// The self-assessment table or the answers file is invalid.
    public static let assessmentInvalid = MijianError.Code("collector.assessment-invalid")
}

extension MijianError {
    /// Wraps a database error with what the collector was doing.
    static func database(_ doing: String, _ error: any Error, path: String? = nil) -> MijianError {
        if let error = error as? MijianError { return error }
        return MijianError(.database, "\(doing): \(error)", path: path)
    }
}
