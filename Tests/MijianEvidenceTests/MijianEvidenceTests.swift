import Testing

@testable import MijianEvidence
