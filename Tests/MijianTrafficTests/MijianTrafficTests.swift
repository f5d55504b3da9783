import Testing

@testable import MijianTraffic
