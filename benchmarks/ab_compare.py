"""A/B timing of genaug itself: this tree against an earlier commit, alternating, in fresh processes.

Peers are timed side by side in ``throughput.py``; this script answers a narrower question — did
a change make genaug slower? — by timing the same calls on two source trees in alternating
subprocesses (so machine load hits both alike) and reporting the best of ``--rounds`` for each.
Times are process CPU time (``time.process_time``), so that on a shared machine the time spent
waiting for a core does not count; use ``--threads 1`` there.

Usage:
    git worktree add /tmp/ref <commit>
    python benchmarks/ab_compare.py --ref /tmp/ref --rounds 3 --threads 1
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASES = r"""
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
import genaug as ga

def pipeline(size):
    return ga.Compose([ga.RandomResizedCrop(size, scale=(0.5, 1.0)), ga.RandomRotation(30), ga.RandomScale((0.8, 1.2)),
                       ga.ColorJitter(0.4, 0.4, 0.4, 0.1), ga.RandomGaussianBlur(5, sigma=(0.1, 2.0))], seed=0)

def best(fn, repeats):
    # process CPU time, not wall time: on a machine shared with other jobs, time spent waiting for a
    # core does not count (run with --threads 1 so that CPU time is the work itself)
    fn()
    times = []
    for _ in range(repeats):
        t = time.process_time(); fn(); times.append(time.process_time() - t)
    return min(times)

g = torch.Generator().manual_seed(0)
out = {}
x64 = torch.rand(256, 3, 64, 64, generator=g)
out["5-op B=256 64x64 float32, images/s"] = 256 / best(lambda: pipeline(64)(x64), 5)
x224 = (torch.rand(256, 3, 224, 224, generator=g) * 255).to(torch.uint8)
aug224 = pipeline(224)
out["5-op B=256 224x224 uint8, images/s"] = 256 / best(lambda: aug224(x224), 3)
one = torch.rand(1, 3, 64, 64, generator=g)
aug = pipeline(64)
out["5-op B=1 64x64, ms/call"] = 1000 * best(lambda: aug(one), 50)
tiny = torch.rand(8, 3, 16, 16, generator=g)
aug16 = pipeline(16)
out["5-op B=8 16x16 (host overhead), ms/call"] = 1000 * best(lambda: aug16(tiny), 50)
rot = ga.Compose([ga.RandomRotation(30), ga.RandomResizedCrop(224, scale=(0.5, 1.0))], seed=0)
img = torch.rand(64, 1, 256, 256, generator=g)
for dtype in (torch.int64, torch.uint8):
    masks = torch.randint(0, 20, (64, 256, 256), generator=g).to(dtype)
    name = f"rotation + crop, B=64 256x256 image + {str(dtype)[6:]} mask, ms/call"
    out[name] = 1000 * best(lambda: rot(img, masks=masks), 5)
print(json.dumps(out))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", required=True, help="source tree of the reference commit (a git worktree)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {"this tree": {}, "reference": {}}
    for _ in range(args.rounds):
        for label, tree in (("reference", Path(args.ref)), ("this tree", ROOT)):
            proc = subprocess.run([sys.executable, "-c", CASES, str(args.threads)], cwd=tree, capture_output=True,
                                  text=True, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}, check=True)
            for key, value in json.loads(proc.stdout).items():
                results[label].setdefault(key, []).append(value)
    print(f"| case (best of {args.rounds}, {args.threads} thread(s), process CPU time) | reference | this tree | this / reference |")
    print("|---|---:|---:|---:|")
    for key in results["this tree"]:
        pick = min if "ms" in key else max
        ref, new = pick(results["reference"][key]), pick(results["this tree"][key])
        print(f"| {key} | {ref:,.2f} | {new:,.2f} | {new / ref:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
