print("bench-evidence: not written yet")
