"""benchmarks/gpu_suite.py runs end to end with --smoke (tiny settings, whatever device exists).

The smoke run also starts the torch.compile child and kills it after its short compile limit,
so the time limit, the kill and the "skipped" report line are exercised without a GPU.
"""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_suite_smoke(tmp_path):
    out = tmp_path / "RESULTS-cuda.md"
    proc = subprocess.run([sys.executable, "benchmarks/gpu_suite.py", "--smoke", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    report = out.read_text()
    assert "Partial report" not in report
    for heading in ("## 1. Throughput", "## 2. kornia under `torch.compile`", "## 3. Latency",
                    "## 4. Generative sampling", "## 5. genaug per-stage profile", "## Targets", "## Section times"):
        assert heading in report, heading
    assert "| genaug |" in report and "| kornia |" in report
    queued = report.split("### 1b. Queued")[1].split("##")[0]
    assert "| 32 | float32 | genaug |" in queued and "| 32 | uint8 | kornia |" in queued
    assert "| 32 | float32 | genaug | " in queued and "| 1.00x |" in queued
    assert "| mnist-cgan |" in report and "| mnist-cvae |" in report
    assert "killed, skipped" in report  # the compile child hit its (smoke) limit and was stopped
    targets = report.split("## Targets")[1].split("##")[0]
    assert targets.count("- genaug") == 6
    assert all(("met" in line) or ("not measured" in line) for line in targets.splitlines() if line.startswith("- "))
    assert (tmp_path / "RESULTS-cuda.compile-worker.log").exists()
    assert "Targets:" in proc.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_gpu_suite_refuses_a_full_run_without_cuda(tmp_path):
    proc = subprocess.run([sys.executable, "benchmarks/gpu_suite.py", "--out", str(tmp_path / "r.md")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr
