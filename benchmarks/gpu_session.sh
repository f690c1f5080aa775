#!/usr/bin/env bash
# Everything a lent GPU session measures, in one go (about 6 minutes on an H100), each step under
# its own time limit so that a stuck step cannot eat the others:
#   1. the CUDA tests (tests/test_cuda.py, test_device_loader.py, test_noise.py);
#   2. the kernel profile of one call (benchmarks/cuda_profile.py) at four sizes;
#   3. the GPU suite (benchmarks/gpu_suite.py -> RESULTS-cuda.md);
#   4. the cost of a generative augmenter in the pipeline (generative_augment_speed.py --device cuda);
#   5. corruption throughput on the GPU (corruptions.py --device cuda).
# The lent machine lacks kornia and albumentations: their wheels travel in .whl (cp312, manylinux;
# the device README has the pip download line): kornia 0.9.0, kornia_rs 0.2.0, albumentations 2.0.8,
# albucore 0.0.24, pydantic 2.14.4, pydantic-core 2.50.5, annotated-types 0.8.0,
# typing-inspection 0.4.5, simsimd 6.5.16, stringzilla 5.3.2.
# Usage (repository root, those wheels on PYTHONPATH):
#   OUT=/some/folder bash benchmarks/gpu_session.sh        (benchmarks/gpu_command.txt has the whole line)
set -u
OUT=${OUT:-/tmp/genaug-gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
step() { echo "[$(date -u +%T)] $*" | tee -a "$OUT/other.log"; }

step "device"
{ nvidia-smi -L; echo "logical CPUs: $(nproc)"; python3 -c 'import torch; print("torch", torch.__version__)'; } >> "$OUT/other.log" 2>&1

step "1. CUDA tests"
{ cat "$OUT/other.log"; timeout 100 python3 -m pytest tests/test_cuda.py tests/test_device_loader.py tests/test_noise.py -q -p no:cacheprovider; } > "$OUT/cuda_tests.log" 2>&1
tail -4 "$OUT/cuda_tests.log"

step "2. kernel profile"
for args in "--size 224 --batch 256" "--size 224 --batch 256 --dtype uint8" "--size 64 --batch 256" "--size 224 --batch 8"; do
    timeout 60 python3 benchmarks/cuda_profile.py --antialias $args --top 12 2>&1 | grep -v -E "USDT|profiler_st|UserWarning|_warn_once"
done > "$OUT/profile.md"
grep -E "^## |wall time|GPU kernel time" "$OUT/profile.md"

step "3. GPU suite"
timeout 300 python3 benchmarks/gpu_suite.py --out "$OUT/RESULTS-cuda.md" > "$OUT/gpu_suite.log" 2>&1
grep -A8 "^Targets" "$OUT/gpu_suite.log"

step "4. generative augmenter cost"
timeout 50 python3 benchmarks/generative_augment_speed.py --device cuda --threads 16 --repeats 5 --out "$OUT/GENERATIVE_AUGMENT-cuda.md" >> "$OUT/other.log" 2>&1

step "5. corruptions"
timeout 50 python3 benchmarks/corruptions.py --device cuda --sizes 224 --images 256 --repeats 3 > "$OUT/corruptions-cuda.md" 2>&1
step "done"
