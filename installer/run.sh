#!/usr/bin/env bash
# The README's two Quick start commands. Each installs what is missing, builds, then runs.
#   installer/run.sh demo [ARGS...]   the main job: the demo pipeline, headless, with a report
#   installer/run.sh test [CTEST ARGS...]   build and run the whole test suite
#   installer/run.sh build            only set up and build (release preset, build/release)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
cmd=${1:-}
[ $# -gt 0 ] && shift

jobs=${POLYMOE_BUILD_JOBS:-2}
build() {
  bash installer/setup.sh
  if [ ! -f build/release/CMakeCache.txt ]; then
    cmake --preset release >/dev/null
  fi
  cmake --build --preset release -j "$jobs"
}

case "$cmd" in
  build)
    build ;;
  test)
    build
    ctest --preset release -j "$jobs" "$@" ;;
  demo)
    build
    exec build/release/bin/polymoe demo "$@" ;;
  *)
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2 ;;
esac
