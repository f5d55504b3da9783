import Testing

@testable import MijianChecks
