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
auth:                          # identity authentication (七.6), keyed by the classification in host.yaml
  levels:                      # a machine meets its level when one method holds in every login stack;
                               # a host.yaml without a classification is judged at the strictest level listed
    秘密:                       # a password of at least 8 characters, changed at least monthly
      - {factor: password, min_length: 8, max_age_days: 30}
    机密:                       # a USB key or IC card plus a password of at least 4, or a password alone of at least 10 changed weekly
      - {factor: token, min_length: 4}
      - {factor: password, min_length: 10, max_age_days: 7}
    绝密:                       # biometric, or a key plus a password of at least 6
      - {factor: biometric}
      - {factor: token, min_length: 6}
  lockout: {max_deny: 5, min_unlock_seconds: 900}      # pam_faillock deny and unlock_time (0: never unlocked by itself)
  sshd: forbidden              # forbidden | allowed (then root login and empty passwords must be off)
  screenlock: {max_idle_seconds: 900, max_lock_delay_seconds: 5, max_shell_timeout_seconds: 900}
markings:                      # data.markings here is an inventory of marked documents (informational), by `mijian scan`
  paths: [/home, /root, /media, /run/media, /mnt, /var/mail, /var/spool/mail]
  exclude: [.cache, .git, node_modules, .local/share/Trash, "*.iso"]
malware:                       # malware.scanner (七.6): an accepted scanner installed, its signatures fresh, something running it
  max_signature_age_days: 7    # air-gapped units import signatures one way: their age is the signal
  products:                    # accepted scanners; a domestic endpoint product is described the same way:
                               # {name, packages or paths, processes, units, scan_commands,
                               #  signatures: {format: clamav | mtime | regex, path, pattern, date_format}}
    - name: ClamAV
      packages: [clamav, clamav-daemon, clamdscan]
      processes: [clamd, clamonacc]
      units: [clamav-daemon.service, clamav-clamonacc.service]
      scan_commands: [clamscan, clamdscan]
      signatures: {format: clamav, path: /var/lib/clamav}
software:                      # software.prohibited (七.4, 七.6): the built-in list (IM, cloud sync, remote control, VPN/proxy, P2P) always applies
  prohibited: []               # more: {name, category: instant-messaging | cloud-storage | remote-control | vpn-proxy | p2p,
                               #        packages, executables, paths, flatpak, snap}
  allow: []                    # built-in entries this unit permits, by name (e.g. OpenVPN)
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
  software.prohibited: {enabled: false}   # 七.4 binds classified work; messaging on an unclassified machine is not judged here
  usb.storage: {enabled: true, severity: informational}
  usb.history: {enabled: true, severity: informational}
  data.markings: {enabled: true, severity: critical}   # 七.8, deduction item 54: a marked document here fails
markings:                      # where data.markings (and `mijian scan` without paths) looks for classified markings
  paths: [/home, /root, /media, /run/media, /mnt, /var/mail, /var/spool/mail]   # home directories, mounted media, mail spools
  exclude: [.cache, .git, node_modules, .local/share/Trash, "*.iso"]           # names, or host paths when they hold a /
  max_file_bytes: 536870912    # larger files are not read (a document beyond it is listed as unread)
  max_depth: 32                # directory levels below each path
  archive_depth: 3             # zip, tar and gzip archives opened inside one another
collector:
  silent_after_days: 14

"""#
}
