// libFuzzer entry point over the packet decoder, the DNS reader and the egress analyzer.
// Built with -parse-as-library; `fuzz_traffic_main` (where SwiftPM points `main`) runs libFuzzer's driver.
import CFuzzerDriver
import MijianCore
import MijianTraffic

private let linkTypes: [LinkType] = [
    .null, .ethernet, .raw, .rawOpenBSD, .rawLinktype, .loop, .linuxSLL, .ipv4, .ipv6, .linuxSLL2,
]

private let policy: EgressPolicy? = {
    let yaml = """
        id: fuzz
        version: "1"
        profile: classified
        networks:
          unit: [10.0.0.0/8, fd00::/8]
        dns:
          allowed_suffixes: [unit.internal]
        traffic:
          max_flows: 64

        """
    return (try? Policy.parse(Array(yaml.utf8), file: "fuzz.yaml")).map(EgressPolicy.init)
}()

/// The first byte picks the link type; the rest is the frame.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0, let policy else { return 0 }
    let linkType = linkTypes[Int(data[0]) % linkTypes.count]
    let frame = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    if let packet = PacketDecoder.decode(frame, linkType: linkType), let payload = packet.payload {
        // The payload range must lie inside the frame: slicing it traps otherwise.
        let bytes = UnsafeRawBufferPointer(rebasing: frame[payload])
        _ = DNSDecoder.query(payload: bytes, overTCP: packet.proto == IPProtocol.tcp)
    }
    _ = DNSDecoder.query(payload: frame, overTCP: data[0] & 1 == 1)
    var analyzer = EgressAnalyzer(policy: policy)
    analyzer.process(frame, linkType: linkType, time: 0)
    analyzer.process(frame, linkType: linkType, time: 1)
    // What was flagged must list and serialise without trapping, whatever names and addresses it holds.
    let flows = analyzer.table.sorted
    _ = FlowListing.text(flows)
    _ = JSONValue.array(flows.map(\.json)).serialized()
    return 0
}

/// The entry point SwiftPM's link names `main`: libFuzzer's driver with the arguments as given.
@_cdecl("fuzz_traffic_main")
public func fuzzTrafficMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var count = argc
    var arguments = argv
    return mijian_fuzzer_run(&count, &arguments) { data, size in
        guard let data else { return 0 }
        return fuzz(data, size)
    }
}
