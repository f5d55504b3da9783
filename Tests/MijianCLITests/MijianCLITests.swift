import Testing

@testable import MijianCLI
