#!/usr/bin/env bash
# gdxp's own check on an NVIDIA GPU machine, in one call: tests/gpu_check.sh OUT_DIR, from the repository root.
# (../shared/gpu/check.sh installs what that machine lacks, writes env.txt, then runs this with its $OUT.)
#
# Stages, each under its own time limit (7.5 minutes in all at most; not yet timed on a GPU):
#   1. every `gpu` test on CuPy and torch CUDA         -> pytest.log, junit.xml
#   2. the JAX GPU cases that matter (the float64 and   -> pytest-jax.log
#      cross-library ones, training, seeds, files)
#   3. examples/compare_devices.py at GPU sizes         -> compare.log, compare_devices.csv, compare_devices.png
#   4. examples/benchmark.py --backend cupy, short runs -> bench.log
# Seven files (eight with check.sh's env.txt). The GPU backends are required (GDXP_REQUIRE_BACKENDS): a GPU
# library that cannot run, or runs only on the CPU, fails its tests instead of skipping them. Where no GPU library
# runs at all, nothing runs and the exit status says so. The exit status is 0 only if every stage passed.
# PYTHON picks the interpreter (default python3); a caller's GDXP_REQUIRE_BACKENDS or XLA_PYTHON_CLIENT_PREALLOCATE
# is kept.
set -u -o pipefail
out=${1:?usage: tests/gpu_check.sh OUT_DIR}
python=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export XLA_PYTHON_CLIENT_PREALLOCATE=${XLA_PYTHON_CLIENT_PREALLOCATE:-false}  # JAX beside CuPy and torch
export GDXP_REQUIRE_BACKENDS=${GDXP_REQUIRE_BACKENDS:-cupy,torch:cuda,jax:gpu}

# which GPU libraries run here, or why not
"$python" -c '
import sys, gdxp
gpus = {"cupy": "cuda", "torch": "cuda", "jax": "gpu"}
statuses = [gdxp.backend_status(name) for name in gpus]
for status in statuses:
    print(status)
if not any(device.startswith(gpus[s.name]) for s in statuses for device in s.devices):
    print("no GPU library runs here (CuPy, torch CUDA, JAX GPU): nothing to check")
    sys.exit(1)
' || { echo "gpu_check: nothing checked (see above)"; exit 2; }
mkdir -p "$out"

failed=()
stage() {  # stage NAME SECONDS LOG COMMAND...: run COMMAND into LOG, stopped with Ctrl-C after SECONDS
  local name=$1 seconds=$2 log=$3; shift 3
  local start=$SECONDS
  timeout -s INT -k 15 "$seconds" "$@" >"$out/$log" 2>&1
  local rc=$?
  echo "== $name: exit status $rc in $((SECONDS - start)) s (limit $seconds s)"
  [ "$rc" -eq 0 ] || failed+=("$name")
}
summary() {  # the lines of a pytest log that say what failed or skipped and how many ran
  grep -hE '^(FAILED|ERROR|SKIPPED)|[0-9]+ (passed|failed|error)|Interrupted|KeyboardInterrupt' "$out/$1" | cut -c1-240 | tail -40
}

pytest=("$python" -m pytest -m gpu -q -rfEs --tb=short --durations=10 --continue-on-collection-errors)
files=(tests/test_gpu.py)  # the GPU-only cases first, then the math on every GPU library
for file in tests/test_*.py; do [ "$file" = tests/test_gpu.py ] || files+=("$file"); done
stage "pytest cupy and torch cuda" 150 pytest.log "${pytest[@]}" -k "not jax" --junitxml="$out/junit.xml" "${files[@]}"
summary pytest.log
# JAX GPU: the float64 and cross-library cases first, then the compiled training, seeds and files in float32
stage "pytest jax gpu" 100 pytest-jax.log "${pytest[@]}" \
  -k "jax-gpu and (test_gpu or float32 or test_seeds)" tests/test_gpu.py tests/test_training.py \
  tests/test_network.py tests/test_seeds.py tests/test_serialization.py tests/test_libraries.py
summary pytest-jax.log
stage "compare_devices.py" 130 compare.log "$python" examples/compare_devices.py --figures "$out"
tail -30 "$out/compare.log"
# short runs of workloads 1-3 (3: the 4096-wide network against the GPU's matmul rate); 4 is CPU-only: left out
stage "benchmark.py cupy" 70 bench.log "$python" examples/benchmark.py --backend cupy --wide 4096 --steps 2000 \
  --long-steps 8000 --other-steps 200 --batches 20 --repeats 3 --widths
tail -30 "$out/bench.log"

if [ "${#failed[@]}" -gt 0 ]; then
  printf 'gpu_check: FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "gpu_check: every stage passed"
