import Testing

@testable import MijianHost
