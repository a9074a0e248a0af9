#!/usr/bin/env bash
# Creates .venv with PyPI's torch 2.11 + transformers 5.x, the real consumer of `polymoe export`
# folders; the `interop` ctest entry uses it (PLATFORM.md, "PyPI on these machines").
# Usage: installer/interop-venv.sh [VENV_DIR]   (default: .venv at the repository root)
# Never link this torch into the build: it is for the Python interop test only.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${1:-$here/.venv}
python=${PYTHON:-python3}

start=$(date +%s)
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --disable-pip-version-check --quiet)

# torch without its dependency list: the wheel asks for several GB of nvidia-* CUDA wheels whose
# libraries /usr/local/cuda already has; these three are the ones it lacks.
"${pip[@]}" --no-deps torch==2.11.0 "nvidia-cufile==1.15.1.6.*" nvidia-cusparselt-cu13==0.8.0 \
  nvidia-nvshmem-cu13==3.4.5
# torch's own pure-Python dependencies (what --no-deps skipped), then the consumer side.
"${pip[@]}" filelock typing-extensions sympy networkx jinja2 fsspec setuptools
"${pip[@]}" transformers safetensors sentencepiece numpy

# `import torch` needs the CUDA libraries of /usr/local/cuda even on a CPU-only machine.
export LD_LIBRARY_PATH=/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
"$venv/bin/python" - <<'EOF'
import torch, transformers, safetensors, sentencepiece, numpy
print(f"interop-venv: torch {torch.__version__}, transformers {transformers.__version__}, "
      f"safetensors {safetensors.__version__}, numpy {numpy.__version__}")
EOF
echo "interop-venv: ready in $(( $(date +%s) - start )) s: $venv"
echo "interop-venv: run Python from it with LD_LIBRARY_PATH=/usr/local/cuda/lib64"
