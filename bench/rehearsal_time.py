"""How much time the workflow rehearsal (tests/rehearsal/) adds to the suite.

Runs `CI=true pytest -p no:randomly -n 4 tests/rehearsal --durations=0` (the suite's own options:
four processes, slow tests first) and prints the wall time, the sum of the tests' durations
(setup + call + teardown, as pytest reports them: what the rehearsal takes of the suite's four
workers), the share of setup (the fixtures: a database, `dispatch serve`, the git server), the
CPU time its processes used, and the slowest tests. `--root` runs another checkout's tests (to
compare two versions).

    python bench/rehearsal_time.py [--root PATH] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

DURATION = re.compile(r"^([\d.]+)s (setup|call|teardown)\s+(\S+)$")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--workers", default="4")
    args = parser.parse_args()
    command = [sys.executable, "-m", "pytest", "-p", "no:randomly", "-n", args.workers]
    command += ["tests/rehearsal", "--durations=0", "-vv"]
    before = os.getloadavg()
    started = time.monotonic()
    done = subprocess.run(
        command,
        cwd=args.root,
        env={**os.environ, "CI": "true"},
        capture_output=True,
        text=True,
    )
    wall = time.monotonic() - started
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    phases: dict[str, float] = defaultdict(float)
    tests: dict[str, float] = defaultdict(float)
    for line in done.stdout.splitlines():
        found = DURATION.match(line.strip())
        if found:
            seconds, phase, test = float(found[1]), found[2], found[3]
            phases[phase] += seconds
            tests[test] += seconds
    (Path(os.environ.get("TMPDIR", "/tmp")) / "rehearsal_time.log").write_text(done.stdout)
    for line in done.stdout.splitlines():
        if line.startswith(("FAILED", "ERROR")):
            print(line)
    summary = [line for line in done.stdout.splitlines() if " passed" in line or " failed" in line]
    after = os.getloadavg()
    print(f"root: {args.root}")
    print(f"result: {summary[-1].strip() if summary else done.stdout[-2000:]}")
    print(
        f"load average (1 min) before/after: {before[0]:.1f}/{after[0]:.1f}, {os.cpu_count()} cores"
    )
    print(f"wall time, -n {args.workers}: {wall:.1f} s")
    # Less at the mercy of other load than the times: what the run's processes (pytest, its
    # workers, and the servers and git they started) spent on the CPUs.
    print(f"CPU time: {used.ru_utime + used.ru_stime:.1f} s (user {used.ru_utime:.1f} s)")
    total = sum(phases.values())
    print(f"summed durations: {total:.1f} s ({len(tests)} tests)")
    for phase in ("setup", "call", "teardown"):
        print(f"  {phase}: {phases[phase]:.1f} s")
    print("slowest:")
    for test, seconds in sorted(tests.items(), key=lambda item: -item[1])[:6]:
        print(f"  {seconds:6.1f} s  {test}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
