print("bench-traffic: not written yet")
