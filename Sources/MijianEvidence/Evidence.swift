import MijianCore

/// Signing and verification of reports (DSSE, Ed25519).
public enum MijianEvidence {}
