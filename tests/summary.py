#!/usr/bin/env python3
"""Prints 'N passed, N failed[, N skipped]' for a meson test log: each TAP
check counts once, a non-TAP test counts as one."""
import json
import re
import sys

passed = failed = skipped = 0
with open(sys.argv[1], encoding="utf-8") as log:
    for line in log:
        t = json.loads(line)
        result = t.get("result")
        out = t.get("stdout") or ""
        # meson 1.0 does not log the protocol: a TAP stream has a plan line.
        if re.search(r"^1\.\.\d+", out, re.M):
            skipped_checks = len(re.findall(r"^ok \d+[^\n]*# SKIP", out, re.M | re.I))
            ok = len(re.findall(r"^ok \d+", out, re.M)) - skipped_checks
            skip = skipped_checks + len(re.findall(r"^1\.\.0 # SKIP", out, re.M))
            bad = len(re.findall(r"^not ok \d+", out, re.M))
            passed += ok
            failed += bad
            skipped += skip
            # A crash or timeout after the last check still fails the program.
            if result not in ("OK", "SKIP", "EXPECTEDFAIL") and bad == 0:
                failed += 1
        elif result == "SKIP":
            skipped += 1
        elif result in ("OK", "EXPECTEDFAIL"):
            passed += 1
        else:
            failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
