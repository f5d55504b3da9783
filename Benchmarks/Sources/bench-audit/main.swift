print("bench-audit: not written yet")
