"""The benchmark scripts run end to end (tiny settings), so a committed command cannot rot."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_script(*args):
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_throughput_quick(tmp_path):
    out = tmp_path / "results.md"
    run_script("benchmarks/throughput.py", "--quick", "--sizes", "32", "--out", str(out))
    table = out.read_text()
    for library in ("genaug", "genaug (backend=opencv)", "kornia", "albumentations", "torchvision"):
        assert f"| {library} |" in table
    assert "genaug per-stage profile" in table
    # every stage the profile names still exists in genaug (a renamed one would silently vanish)
    for stage in ("grid_sample (bilinear)", "edge coverage for the constant fill", "fused colour map",
                  "antialias pre-blur", "sampling grid", "parameter sampling", "pixel stage"):
        assert stage in table, stage


def test_per_image(tmp_path):
    stdout = run_script("benchmarks/per_image.py", "--sizes", "16", "--images", "2", "--repeats", "1")
    assert "| 16×16 |" in stdout


def test_vae_prior_ablation_without_cas(tmp_path):
    stdout = run_script("benchmarks/vae_prior_ablation.py", "--seeds", "0")
    rows = {line.split("|")[1].strip(): float(line.split("|")[3]) for line in stdout.splitlines()
            if line.startswith("| standard") or line.startswith("| aggregate")}
    assert rows["aggregate (fitted)"] > rows["standard N(0, I)"]


def test_generative_quality_speed_only(tmp_path):
    out, js = tmp_path / "q.md", tmp_path / "q.json"
    run_script("benchmarks/generative_quality.py", "--skip-cas", "--models", "mnist-cvae", "--out", str(out),
               "--json", str(js))
    assert "| mnist-cvae |" in out.read_text() and js.exists()


def test_generator_eval_quick(tmp_path):
    out = tmp_path / "eval.md"
    run_script("benchmarks/generator_eval.py", "--quick", "--models", "mnist-cgan", "--cas-seeds", "--out", str(out),
               "--reports", str(tmp_path / "reports"))
    table = out.read_text()
    assert "| FID |" in table and "mnist-cgan" in table


def test_generative_augment_speed_quick(tmp_path):
    out = tmp_path / "ga.md"
    run_script("benchmarks/generative_augment_speed.py", "--quick", "--out", str(out))
    assert "| 28×28×1 | float32 |" in out.read_text()


def test_export_speed_quick(tmp_path):
    out = tmp_path / "export.md"
    run_script("benchmarks/export.py", "--quick", "--formats", "webdataset", "--out", str(out))
    table = out.read_text()
    assert "| export webdataset, torchrun 2 ranks |" in table and "webdataset yes" in table


def test_input_pipeline_quick(tmp_path):
    out = tmp_path / "input_pipeline.md"
    stdout = run_script("benchmarks/input_pipeline.py", "--quick", "--device", "cpu", "--out", str(out))
    table = out.read_text()
    for config in ("decode only (no augmentation)", "torchvision v2, per sample in workers",
                   "albumentations, per sample in workers", "genaug, per sample in workers",
                   "genaug, per batch in collate_fn (workers)", 'genaug backend="opencv", per batch in collate_fn (workers)',
                   "genaug DeviceLoader (cpu)"):
        assert f"| 32 | {config} | 24 |" in table, config  # checked (shape, dtype, changed) and timed
    assert "failed" not in table and "wrote" in stdout


def test_low_data_quick(tmp_path):
    out = tmp_path / "low_data.md"
    stdout = run_script("benchmarks/low_data.py", "--quick", "--outdir", str(tmp_path / "lowdata"), "--out", str(out))
    table = out.read_text()
    for row in ("(a) no augmentation", "(b) classical", "(c) GenerativeSample, cGAN-400",
                "(d) classical + GenerativeSample, cGAN-400", "(c') GenerativeSample, cVAE-400",
                "(d') classical + GenerativeSample, cVAE-400", "(e) classical + GenerativeSample, shipped mnist-cgan"):
        assert f"| {row}" in table, row
    assert "(not run)" not in table and "cgan-400: 2 steps" in stdout
    assert (tmp_path / "lowdata" / "cgan-400" / "model.safetensors").exists()
    assert (tmp_path / "lowdata" / "cvae-400" / "model.safetensors").exists()


def test_robustness_table_quick(tmp_path):
    out, png = tmp_path / "rt.md", tmp_path / "rt.png"
    stdout = run_script("benchmarks/robustness_table.py", "--quick", "--outdir", str(tmp_path / "rt"),
                        "--out", str(out), "--png", str(png))
    table = out.read_text()
    # the loop equals genaug's trainer without augmentation, and the shared test sets equal evaluate()'s
    assert "checks: training loop == genaug.generative.train; errors == evaluate()" in stdout
    for row in ("no augmentation", "classical (RandomAffine + ColorJitter)", "RandomCorruption, 4 extra corruptions"):
        assert f"| {row} |" in table, row
    assert "Baseline of CE / mCE: the no-augmentation model" in table
    for name in ("gaussian_noise", "contrast", "fog"):
        assert f"| {name} |" in table
    assert png.stat().st_size > 0
    import json

    runs = json.loads((tmp_path / "rt" / "results.json").read_text())["runs"]
    assert sorted(runs) == sorted(f"{c}/{s}" for c in ("none", "classical", "corruption") for s in (0, 1))


def test_page_faults_reports_both_settings_for_each_backend():
    stdout = run_script("benchmarks/page_faults.py", "--sizes", "16", "--batch", "2", "--repeats", "1", "--threads", "1")
    rows = [line for line in stdout.splitlines() if line.startswith("| 16 |")]
    assert [tuple(cell.strip() for cell in row.split("|")[2:4]) for row in rows] == [
        ("torch", "no"), ("torch", "yes"), ("opencv", "no"), ("opencv", "yes")]


def test_cuda_profile_quick(tmp_path):
    out = tmp_path / "profile.md"
    run_script("benchmarks/cuda_profile.py", "--quick", "--out", str(out))
    text = out.read_text()
    assert "wall time per call" in text and "ops per call" in text  # CPU ops here: no GPU in CI
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == 5 and all(float(r.split("|")[2]) >= 0 for r in rows)
