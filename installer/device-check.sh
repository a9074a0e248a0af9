#!/usr/bin/env bash
# The GPU check of the CUDA MoE kernels in one command, for one `run` call on the device machine (H100 /
# H200, python3 with PyPI's torch 2.11 + CUDA 13, nvcc, CMake; no Qt, no network): configure the `cuda`
# preset against python3's torch, build with every core, run the cuda tests (kernels against their C++
# references, the MoE block forward + backward on CUDA against the CPU, training steps on CUDA), then
# `polymoe bench moe` on CUDA in fp32 and bf16. Stops at the first failing step and says which.
#
# Usage, from the repository root:
#   bash installer/device-check.sh fetch   # HERE, with Debian's registry: the -dev packages the GPU
#                                          # machine may lack (SQLite, nlohmann-json, zlib) into
#                                          # build/device-deps; name that folder in the run's carry
#   bash installer/device-check.sh         # THERE: the check
#   OUT=DIR (default build/device-check) receives summary.txt, build.log, ctest.log and the bench
#   tables (bench-moe-cuda-{fp32,bf16}.{md,json}), the CLI runs' results (cli-*.json, one a bf16 stage 1 on
#   CUDA) and the NCCL run's (nccl-*.json, nccl.log): a dozen small files, within what a `run` call brings back.
#   PYTHON=... picks the Python whose torch is used (default python3); JOBS=N the build jobs (all cores).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
deps=build/device-deps
# A tiny project with its token shards, made HERE with the release build (the GPU machine has no
# SentencePiece to tokenize with), for the CLI training on CUDA in step 6.
make_project() {
  local cli=${POLYMOE_CLI:-build/release/bin/polymoe} p=$deps/project/tiny.polymoe
  [ -x "$cli" ] || { echo "device-check fetch: $cli is not built (cmake --build --preset release)" >&2; return 1; }
  rm -rf "$deps/project" && mkdir -p "$deps/project" &&
    "$cli" project init "$p" >/dev/null &&
    "$cli" corpus demo "$p" --max-chars 150000 --progress none >/dev/null &&
    "$cli" tokenizer train "$p" --vocab-size 1000 --progress none >/dev/null &&
    du -sh "$deps/project"
}
if [ "${1:-}" = fetch ]; then
  rm -rf "$deps" && mkdir -p "$deps" &&
    (cd "$deps" && apt-get download libsqlite3-dev libsqlite3-0 nlohmann-json3-dev zlib1g-dev && ls -l) &&
    make_project && exit 0
  echo "device-check fetch: failed (apt-get download or the tiny project)" >&2
  exit 1
fi
# `cli-train CLI OUTDIR DEVICE`: only step 6 (the CLI trains the carried tiny project on DEVICE), so it
# can be tried on the CPU here: bash installer/device-check.sh cli-train build/release/bin/polymoe /tmp/x cpu
OUT=${OUT:-$PWD/build/device-check}
PYTHON=${PYTHON:-python3}
JOBS=${JOBS:-$(nproc)}
mkdir -p "$OUT"
summary=$OUT/summary.txt
: >"$summary"
start=$(date +%s)
say() { echo "device-check: $*" | tee -a "$summary"; }
# die STEP LOG: the step failed; the end of its log goes to stdout and the summary.
die() {
  say "FAILED at step '$1' after $(( $(date +%s) - start )) s (log: $(basename "${2:-$summary}"))"
  if [ -n "${2:-}" ] && [ -f "$2" ]; then
    echo "---- last lines of $(basename "$2") ----" | tee -a "$summary"
    tail -n 60 "$2" | tee -a "$summary"
  fi
  exit 1
}
step() { say "[$(( $(date +%s) - start )) s] $*"; }

# project_copy LOG: a temporary copy of the tiny project carried in $deps/project (made by `fetch`);
# prints the folder, or writes to LOG why there is none (the callers show its end when they fail).
project_copy() {
  if [ ! -f "$deps/project/tiny.polymoe" ]; then
    echo "no tiny project in $deps/project: run 'bash installer/device-check.sh fetch' on the CPU machine and carry $deps" >"$1"
    return 1
  fi
  local work
  work=$(mktemp -d) && cp -r "$deps/project/." "$work/" && echo "$work"
}
# cli_train CLI OUTDIR DEVICE: the carried tiny project (a copy) through the CLI on DEVICE.
cli_train() {
  local cli=$1 out=$2 dev=$3 log=$2/cli-train.log work
  mkdir -p "$out"
  work=$(project_copy "$log") || return 1
  local p=$work/tiny.polymoe
  {
    "$cli" pretrain "$p" --recipe demo-base-tiny --steps 30 --device "$dev" --json --progress none >"$out/cli-pretrain.json" &&
      "$cli" analyze "$p" --tokens 2000 --progress none &&
      "$cli" allocate "$p" --strategy uniform --budget 2 --progress none &&
      "$cli" train "$p" --stage 1 --steps 20 --device "$dev" --json --progress none >"$out/cli-stage1.json" &&
      "$cli" train "$p" --stage 2 --steps 10 --device "$dev" --json --progress none >"$out/cli-stage2.json" &&
      "$cli" train "$p" --stage 1 --steps 10 --device "$dev" --dtype bf16 --name s1-bf16 --json --progress none \
        >"$out/cli-stage1-bf16.json"
  } >"$log" 2>&1 || { rm -rf "$work"; return 1; }
  rm -rf "$work"
  local want=$([ "$dev" = cuda ] && echo cuda:0 || echo cpu) f got
  for f in pretrain stage1 stage2 stage1-bf16; do
    got=$("${PYTHON:-python3}" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["device"], d["dtype"], round(d["final_loss"], 3))' "$out/cli-$f.json") ||
      { echo "cli-$f.json: unreadable" >>"$log"; return 1; }
    say "  $f: device dtype final-loss = $got"
    [ "${got%% *}" = "$want" ] || { echo "cli-$f.json: ran on ${got%% *}, not $want" >>"$log"; return 1; }
  done
}
# nccl_check CLI OUTDIR: data-parallel pretraining over NCCL (polymoe launch --backend nccl) against
# one plain process with the same global batch and seed: the weights must agree (GPU sums, another
# order) and the run must record that it joined NCCL. With one GPU the launch is a group of one (NCCL's
# communicator, its sums and the CPU values it moves to the GPU and back); with two or more, two ranks.
# The same ranks are then started by torchrun ($PYTHON -m torch.distributed.run): with NCCL (a build
# on PyTorch 2.x) through the store of torchrun's agent (static rendezvous), otherwise (Debian's
# LibTorch 1.13, whose client cannot speak to that store) with the c10d rendezvous and rank 0's store.
# Tried here on the CPU with Gloo: bash installer/device-check.sh nccl-check build/release/bin/polymoe /tmp/x gloo cpu
nccl_check() {
  local cli=$1 out=$2 backend=${3:-nccl} dev=${4:-cuda} log=$2/nccl.log work ranks rdzv
  mkdir -p "$out"
  ranks=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
  [ "${ranks:-0}" -ge 2 ] && ranks=2 || ranks=1
  if [ "$backend" = nccl ]; then
    rdzv=(--rdzv-backend static --master-addr 127.0.0.1 --master-port $((29000 + $$ % 900)) --node-rank 0)
  else
    rdzv=(--standalone)
  fi
  work=$(project_copy "$log") || return 1
  local p=$work/tiny.polymoe common=(--recipe demo-base-tiny --steps 8 --device "$dev" --threads 1 --json --progress none)
  {
    echo "ranks: $ranks; torchrun: ${rdzv[*]}"
    "$cli" pretrain "$p" "${common[@]}" --name plain --batch-size 4 >"$out/nccl-plain.json" &&
      "$cli" launch --nproc "$ranks" --backend "$backend" --timeout 120 -- pretrain "$p" "${common[@]}" --name nccl \
        --batch-size $((4 / ranks)) >"$out/nccl-launch.json" &&
      POLYMOE_DIST_BACKEND=$backend POLYMOE_DIST_TIMEOUT=120 TORCH_DISABLE_SHARE_RDZV_TCP_STORE=$([ "$backend" = nccl ] && echo 0 || echo 1) \
        timeout 600 "${PYTHON:-python3}" -m torch.distributed.run --nnodes 1 --nproc-per-node "$ranks" "${rdzv[@]}" \
        --no-python "$cli" pretrain "$p" "${common[@]}" --name torchrun --batch-size $((4 / ranks)) >"$out/nccl-torchrun.json" &&
      "${PYTHON:-python3}" - "$p" "$backend" <<'PY'
import json, sqlite3, sys
from safetensors.torch import load_file
p = sys.argv[1]
a = load_file(p + ".d/models/plain/model.safetensors")
backends = [json.loads(c).get("dist_backend", "none") for (c,) in sqlite3.connect(p).execute("SELECT config FROM runs")]
for name in ("nccl", "torchrun"):
    b = load_file(p + ".d/models/" + name + "/model.safetensors")
    assert a.keys() == b.keys(), name + ": different tensors"
    worst = max((a[k].double() - b[k].double()).abs().max().item() for k in a)
    print("max |plain - " + name + "| =", worst)
    assert worst < 1e-4, "the " + name + " run's weights differ from the plain run's"
print("run backends:", backends)
assert backends.count(sys.argv[2]) == 2, "not two runs recorded dist_backend " + sys.argv[2]
PY
  } >"$log" 2>&1
  local rc=$?
  rm -rf "$work"
  grep -E '^(ranks|max |run backends)' "$log" | tee -a "$summary"
  return $rc
}
if [ "${1:-}" = nccl-check ]; then
  nccl_check "$2" "$3" "${4:-nccl}" "${5:-cuda}" && echo "nccl-check: passed" && exit 0
  tail -n 30 "$3/nccl.log"; exit 1
fi
if [ "${1:-}" = cli-train ]; then
  cli_train "$2" "$3" "$4" && say "cli-train: passed" && exit 0
  tail -n 30 "$3/cli-train.log"; exit 1
fi
train_device=cuda

# 1. The machine: the GPU, torch, nvcc, cmake. No GPU visible to torch: nothing else is worth running.
step "environment"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv 2>&1 || true
  "$PYTHON" -c 'import torch, sys; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda,
"available", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")' 2>&1
  command -v nvcc >/dev/null && nvcc --version | tail -n 2
  cmake --version | head -n 1
  echo "cores $(nproc), git $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
} | tee -a "$summary"
"$PYTHON" -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null ||
  die "environment: $PYTHON's torch sees no CUDA device"
nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
[ -x "$nvcc" ] || die "environment: no nvcc on PATH or in /usr/local/cuda/bin"

# 2. Headers the engine needs besides LibTorch: from the system, else from the carried .deb files
# (unpacked into build/device-deps/root, no root file system touched).
# unpack DEB DIR: dpkg -x, or ar + tar where there is no dpkg.
unpack() {
  if command -v dpkg >/dev/null; then dpkg -x "$1" "$2"; return; fi
  local member z
  member=$(ar t "$1" | grep '^data\.tar') || return 1
  case $member in *.xz) z=-J ;; *.zst) z=--zstd ;; *.gz) z=-z ;; *) z= ;; esac
  ar p "$1" "$member" | tar -x $z -C "$2" -f -
}
prefix_args=()
missing=${DEVICE_CHECK_FORCE_DEPS:+ (forced)}
for h in sqlite3.h nlohmann/json.hpp zlib.h; do
  [ -e "/usr/include/$h" ] || [ -e "/usr/local/include/$h" ] || missing="$missing $h"
done
if [ -n "$missing" ]; then
  ls "$deps"/*.deb >/dev/null 2>&1 ||
    die "environment: missing$missing; run 'bash installer/device-check.sh fetch' on the CPU machine and carry $deps"
  root=$PWD/$deps/root
  rm -rf "$root" && mkdir -p "$root"
  for f in "$deps"/*.deb; do
    unpack "$f" "$root" || die "environment: cannot unpack $f"
  done
  # zlib1g-dev's libz.so points at Debian's /lib/.../libz.so.1.2.13: re-point it at this system's libz.so.1.
  libz=$(ldconfig -p 2>/dev/null | awk '/libz\.so\.1 /{print $NF; exit}')
  [ -n "$libz" ] && ln -sf "$libz" "$root/usr/lib/x86_64-linux-gnu/libz.so"
  prefix_args=(-DCMAKE_PREFIX_PATH="$root/usr")
  say "headers missing here:$missing; using the carried packages in $root"
fi

# 3. Configure and build (engine, CLI, kernels, kernel tests) against python3's torch.
step "configure (cmake --preset cuda)"
timeout 180 cmake --preset cuda -DPOLYMOE_TORCH_PYTHON="$(command -v "$PYTHON")" -DCMAKE_CUDA_COMPILER="$nvcc" \
  "${prefix_args[@]}" >"$OUT/build.log" 2>&1 || die configure "$OUT/build.log"
grep -E 'CUDA kernels:|PolyMoE .*kernels=|over c10d:' "$OUT/build.log" | tee -a "$summary"
grep -q 'kernels=ON' "$OUT/build.log" || die "configure: the kernels are not on" "$OUT/build.log"
step "build (-j $JOBS)"
timeout 420 cmake --build --preset cuda -j "$JOBS" >>"$OUT/build.log" 2>&1 || die build "$OUT/build.log"
bin=build/cuda/bin
for exe in polymoe tst_moe_kernels tst_moe_kernels_ref; do
  [ -x "$bin/$exe" ] || die "build: $bin/$exe is missing" "$OUT/build.log"
done
# The pip torch, not a system one (PLATFORM.md: Debian's LibTorch hijacks the link where installed).
ldd "$bin/tst_moe_kernels" | grep -E 'libtorch_cuda|libc10_cuda|libcudart' | tee -a "$summary"
ldd "$bin/tst_moe_kernels" | grep -q 'libtorch_cuda.so => .*site-packages' ||
  die "build: tst_moe_kernels does not load python's libtorch_cuda.so" "$OUT/build.log"

# 4. Tests: label cuda. On a GPU a skip is a failure: the parity checks must have run.
step "tests (ctest --preset cuda)"
timeout 300 ctest --preset cuda >"$OUT/ctest.log" 2>&1
ctest_rc=$?
# ctest -V prefixes each line of a test's output with its number ("2: PASS ..."): failures and totals.
grep -E '(^|: )(FAIL|SKIP)|passed, [0-9]+ failed|tests passed|Test +#[0-9]+:' "$OUT/ctest.log" | cut -c1-200 |
  tee -a "$summary"
[ $ctest_rc -eq 0 ] || die "tests (ctest rc $ctest_rc)" "$OUT/ctest.log"
grep -q 'tst_moe_kernels: [0-9]* passed, 0 failed' "$OUT/ctest.log" ||
  die "tests: tst_moe_kernels did not run its GPU checks (skipped?)" "$OUT/ctest.log"

# 5. The MoE benchmark on CUDA: ATen grouped, masked loop and the kernels, plus each kernel's GB/s.
for dt in float32 bfloat16; do
  short=$([ $dt = float32 ] && echo fp32 || echo bf16)
  step "bench moe --device cuda --dtype $dt"
  timeout 150 "$bin/polymoe" bench moe --device cuda --dtype $dt --repetitions 10 --json \
    --out "$OUT/bench-moe-cuda-$short.md" >"$OUT/bench-moe-cuda-$short.json" 2>>"$OUT/ctest.log" ||
    die "bench moe $dt" "$OUT/ctest.log"
  grep -E '^\| (kernels|grouped|masked|moe_)' "$OUT/bench-moe-cuda-$short.md" | cut -c1-160 | tee -a "$summary"
done

# 6. Training on CUDA through the CLI, on the tiny project made by `fetch`: a base model (pretrain),
# layer similarity, a uniform allocation, stage 1 and stage 2, each with --device cuda; every JSON
# result must say it ran on cuda.
step "CLI training on $train_device (pretrain, analyze, allocate, train --stage 1 and 2)"
cli_train "$bin/polymoe" "$OUT" "$train_device" || die "CLI training on $train_device" "$OUT/cli-train.log"
# 7. NCCL: polymoe launch --backend nccl, and torchrun through its agent's store, against one plain process.
step "NCCL data-parallel pretraining (polymoe launch --backend nccl; torchrun)"
nccl_check "$bin/polymoe" "$OUT" || die "NCCL data-parallel pretraining" "$OUT/nccl.log"
say "ALL PASSED in $(( $(date +%s) - start )) s; logs in $OUT"
