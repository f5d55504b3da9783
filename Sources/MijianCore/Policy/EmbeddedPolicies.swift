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
  links: []                    # links that may be up besides loopback, e.g. [eno1] or [enp*]; empty: any one
dns:
  resolvers: [10.0.0.53]       # the unit's own resolvers
  allowed_suffixes: [unit.internal]
media:
  ledger: []                   # registered removable media (台账): vendor, product, serial, label, classification, responsible
usb:
  mode: audit                  # audit | enforce
channels:
  allow: []                    # channels this unit keeps (七.6): serial, usb-serial, parallel, firewire, pcmcia, optical-read, optical-write
rules: {}                      # per-rule overrides, e.g. net.sockets: {enabled: true, severity: medium}

"""#

    /// `Policies/unclassified-workstation.yaml`, byte for byte.
    public static let unclassifiedWorkstation: String = #"""
# Mijian policy for an unclassified computer (非涉密计算机) of the unit.
# The agent runs here too, so the collector can see a removable medium that crosses between
# classified and unclassified machines (七.9). The internet is allowed; USB devices and USB
# history are still reported as evidence. The host file of such a machine says
# `classification: unclassified` (or 非密).
id: unclassified-workstation
version: "2026.1"
profile: unclassified          # classified | unclassified
networks:
  unit:                        # the unit's own networks, IPv4 and IPv6 CIDRs
    - 10.0.0.0/8
    - fd00::/8
  allowed_destinations:        # the internet is allowed on an unclassified computer
    - 0.0.0.0/0
    - ::/0
  covers_public_space: true    # public space in these lists is refused unless the policy says so, and every report then shows it
dns:
  resolvers: [10.0.0.53]
  allowed_suffixes: [unit.internal]
media:
  ledger: []                   # unclassified media need no entry; classified media must never appear here
usb:
  mode: audit                  # report only: never block on an unclassified computer
rules:                         # what would be a failure on a classified machine is only evidence here
  net.internet-route: {enabled: false}
  net.public-dns: {enabled: false}
  net.interfaces: {enabled: false}
  net.sockets: {enabled: false}
  traffic.egress: {enabled: false}
  wireless.hardware: {enabled: false}
  wireless.modules: {enabled: false}
  wireless.history: {enabled: false}
  hardware.channels: {enabled: false}
  usb.storage: {enabled: true, severity: informational}
  usb.history: {enabled: true, severity: informational}
collector:
  silent_after_days: 14

"""#
}
