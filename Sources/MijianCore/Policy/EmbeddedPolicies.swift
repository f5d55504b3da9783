// Generated from Policies/ by scripts/embed-policies.sh; a test checks it matches the files.
// Edit the YAML files, then run the script.

/// The policies built into the binary.
public enum EmbeddedPolicies {
    /// `Policies/classified-workstation.yaml`, byte for byte.
    public static let classifiedWorkstation: String = #"""
# Mijian policy for a designated classified workstation (涉密计算机).
# Copy this file, edit the networks and the media ledger for your unit, and point
# `mijian audit --policy FILE` (or the service) at the copy.
id: classified-workstation
version: "2026.1"
profile: classified            # classified | unclassified
networks:
  unit:                        # the unit's own networks, IPv4 and IPv6 CIDRs
    - 10.0.0.0/8
    - fd00::/8
  allowed_destinations: []     # peers outside `unit` that may be reached (the collector, …)
dns:
  resolvers: [10.0.0.53]       # the unit's own resolvers
  allowed_suffixes: [unit.internal]
media:
  ledger: []                   # registered removable media (台账): vendor, product, serial, label, classification, responsible
usb:
  mode: audit                  # audit | enforce
rules: {}                      # per-rule overrides, e.g. net.sockets: {enabled: true, severity: medium}

"""#
}
