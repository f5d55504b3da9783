print("bench-collector: not written yet")
