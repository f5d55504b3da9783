#!/usr/bin/env python3
"""One-shot `mijian audit` against `mijian --version`, interleaved.

Usage: Benchmarks/audit-ratio.py BINARY... [--rounds N] [-- AUDIT ARGUMENTS]

Each round runs `BINARY --version` and `BINARY audit --format json` (or the audit arguments
given after `--`) once for every binary, in a shuffled order, with output to /dev/null, and
times each run from spawn to exit. Interleaving puts the machine's drift into every command
alike, which separate hyperfine runs of each command do not. Prints, per binary, the medians,
their ratio, and the same at the 10th percentile.
"""
import os
import random
import statistics
import sys
import time


def main() -> int:
    args = sys.argv[1:]
    audit = ["audit", "--format", "json"]
    if "--" in args:
        cut = args.index("--")
        args, audit = args[:cut], args[cut + 1:]
    rounds = 200
    if "--rounds" in args:
        at = args.index("--rounds")
        rounds = int(args[at + 1])
        del args[at:at + 2]
    if not args:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    commands = []
    for binary in args:
        if not os.access(binary, os.X_OK):
            print(f"audit-ratio: {binary} is not an executable file", file=sys.stderr)
            return 2
        commands += [(binary, "version", [binary, "--version"]), (binary, "audit", [binary] + audit)]
    null = os.open(os.devnull, os.O_WRONLY)
    actions = [(os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)]
    times = {(binary, kind): [] for binary, kind, _ in commands}
    for round_number in range(rounds + 5):
        order = commands[:]
        random.shuffle(order)
        for binary, kind, argv in order:
            start = time.perf_counter_ns()
            pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
            _, status = os.waitpid(pid, 0)
            elapsed = (time.perf_counter_ns() - start) / 1e6
            code = os.waitstatus_to_exitcode(status)
            if code not in (0, 1):
                print(f"audit-ratio: {' '.join(argv)} exited {code}", file=sys.stderr)
                return 2
            if round_number >= 5:  # the first rounds warm the page cache
                times[(binary, kind)].append(elapsed)
    for binary in args:
        version, run = times[(binary, "version")], times[(binary, "audit")]
        v, a = statistics.median(version), statistics.median(run)
        v10, a10 = statistics.quantiles(version, n=10)[0], statistics.quantiles(run, n=10)[0]
        print(f"{binary}: --version {v:.2f} ms, {' '.join(audit)} {a:.2f} ms (medians of {rounds}): "
              f"{a / v:.2f} x; at the 10th percentile {v10:.2f} / {a10:.2f} ms: {a10 / v10:.2f} x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
