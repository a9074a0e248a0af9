#!/usr/bin/env bash
# Installs every Debian package PolyMoE needs to build, test and run its demo; skips what is there.
# Usage: installer/setup.sh [--no-demo-text] [--check]
#   --check          only list what is missing; exit 1 if anything is
#   --no-demo-text   skip the real-text packages (fortunes, translated manual pages) of the demo
set -euo pipefail

build_pkgs=(
  cmake g++ make pkg-config git
  qt6-base-dev libqt6sql6-sqlite libqcustomplot-dev   # Qt 6 Widgets/SQL/Test, QCustomPlot 2.1
  libtorch-dev libopenblas0-openmp                    # LibTorch 1.13 (CPU) and a fast BLAS for it
  libgloo-dev                                         # Gloo headers for c10d data-parallel training
  libsentencepiece-dev sentencepiece                  # tokenizer plugin and its CLI tools
  libsqlite3-dev nlohmann-json3-dev zlib1g-dev        # project store, JSON, gzip'd man pages
  libpcre2-dev libutf8proc-dev                        # tokenizer.json: Unicode regexes (JIT), normalization
  xvfb xauth                                          # virtual display for GUI tests
  python3 python3-venv                                # the transformers interop test's venv (PyPI)
  clang libclang-rt-14-dev                            # libFuzzer for the fuzz targets (tests/fuzz)
)
# Real multilingual text for the demo corpus (PLATFORM.md): fortunes and translated man pages.
text_pkgs=(
  fortunes fortunes-de fortunes-ru fortunes-es
  manpages manpages-de manpages-ru manpages-es
  groff-base man-db                                   # groff renders the man pages; man checks it in tests
)

check_only=0
want_text=1
for arg in "$@"; do
  case "$arg" in
    --check) check_only=1 ;;
    --no-demo-text) want_text=0 ;;
    -h|--help) sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

pkgs=("${build_pkgs[@]}")
[ "$want_text" = 1 ] && pkgs+=("${text_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup.sh: all ${#pkgs[@]} packages are installed"
  exit 0
fi
if [ "$check_only" = 1 ]; then
  echo "setup.sh: missing: ${missing[*]}"
  exit 1
fi

sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "setup.sh: run as root or install sudo" >&2; exit 1; }
  sudo=sudo
fi
# Man pages must not be filtered out by a minimal image's dpkg path excludes.
if grep -qs 'path-exclude=/usr/share/man' /etc/dpkg/dpkg.cfg.d/* 2>/dev/null; then
  echo "setup.sh: note: dpkg excludes /usr/share/man here; the demo corpus needs manual pages" >&2
fi
echo "setup.sh: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup.sh: done"
