#!/usr/bin/env bash
# Builds the fuzz targets with clang's libFuzzer (ASan + UBSan) and fuzzes each for a bounded time,
# starting from its seeds (tests/data/fuzz/TARGET and the suites' test files). An input that crashes,
# trips a sanitizer, hangs or exceeds the memory limit fails the run; it is kept as
# BUILD/artifacts/TARGET/crash-* (or timeout-*, oom-*): add it to tests/data/fuzz/TARGET/crashes/ with
# the fix, and the replay tests (ctest label security) keep it fixed.
# Usage: tests/fuzz/run.sh [--seconds N per target, default 12] [--build-dir DIR, default build/fuzz] [TARGET...]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
seconds=12
build="$root/build/fuzz"
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift ;;
    --build-dir) build=$2; shift ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run.sh: unknown option '$1'" >&2; exit 2 ;;
    *) targets+=("$1") ;;
  esac
  shift
done
# safetensors joins where the LibTorch found is 2.x (CMakeLists.txt says why).
[ ${#targets[@]} -gt 0 ] || targets=(hf_tokenizer model_config corpus project_store)
command -v clang++ >/dev/null || { echo "run.sh: clang++ is not installed (installer/setup.sh installs clang and libclang-rt-14-dev)" >&2; exit 1; }

cmake -S "$here" -B "$build" -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build "$build" -j "${POLYMOE_FUZZ_JOBS:-2}" --target $(printf 'fuzz_%s ' "${targets[@]}") >/dev/null

declare -A extra_seeds=([hf_tokenizer]="$root/tests/data/tokenizer" [safetensors]="$root/tests/data/safetensors"
                        [corpus]="$root/tests/data/corpus")
failed=()
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  artifacts="$build/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  seeds=("$root/tests/data/fuzz/$t")
  [ -n "${extra_seeds[$t]:-}" ] && seeds+=("${extra_seeds[$t]}")
  # Seeds are copied in (read-only originals); the corpus folder grows between runs of this script.
  find "${seeds[@]}" -type f -size -1M -exec cp -n {} "$corpus/" \;
  if (cd "$artifacts" && "$build/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" >"$build/$t.log" 2>&1); then
    echo "fuzz $t: $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$build/$t.log" | grep -o '[0-9]*$') inputs in ${seconds} s, no failure"
  else
    echo "fuzz $t: FAILED; input kept in $artifacts, log $build/$t.log" >&2
    grep -m 3 -E 'ERROR|SUMMARY|terminate|what\(\)' "$build/$t.log" >&2 || true
    failed+=("$t")
  fi
done
[ ${#failed[@]} -eq 0 ] || { echo "run.sh: fuzzing failed for: ${failed[*]}" >&2; exit 1; }
