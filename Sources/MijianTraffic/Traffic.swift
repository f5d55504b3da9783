import MijianCore

/// Outbound-traffic watch over libpcap.
public enum MijianTraffic {}
