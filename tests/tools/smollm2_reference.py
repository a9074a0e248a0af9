#!/usr/bin/env python3
"""Writes transformers' logits of SmolLM2-135M-Instruct for a fixed text, the reference that
tests/core/tst_real_model.cpp compares PolyMoE's forward pass with.

  smollm2_reference.py MODEL_DIR OUT.safetensors [--key KEY]

MODEL_DIR is the folder installer/fetch-smollm2.sh writes. OUT holds input_ids (1, T) int64 (the
text through the folder's own tokenizer, no special tokens added) and logits (1, T, vocab) float32
from LlamaForCausalLM in float32 (eager attention), with metadata: the text, the versions, and KEY
(the caller's cache key, copied). Exit status 77 when torch or transformers cannot be imported."""
import argparse
import sys

TEXT = "The capital of France is Paris. The capital of Germany is"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model_dir")
    p.add_argument("out")
    p.add_argument("--key", default="")
    a = p.parse_args()
    try:
        import torch
        import transformers
        from safetensors.torch import save_file
        from transformers import AutoTokenizer, LlamaForCausalLM
    except ImportError as e:
        print(f"smollm2_reference: {e}", file=sys.stderr)
        return 77

    torch.set_num_threads(2)
    transformers.utils.logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(a.model_dir)
    ids = tokenizer(TEXT, return_tensors="pt", add_special_tokens=False)["input_ids"]
    model, info = LlamaForCausalLM.from_pretrained(
        a.model_dir, dtype=torch.float32, attn_implementation="eager", output_loading_info=True
    )
    problems = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if problems:
        print(f"smollm2_reference: loading {a.model_dir}: {problems}", file=sys.stderr)
        return 1
    with torch.no_grad():
        logits = model.eval()(input_ids=ids).logits.float().contiguous()
    save_file(
        {"input_ids": ids.contiguous(), "logits": logits},
        a.out,
        metadata={"text": TEXT, "key": a.key, "torch": torch.__version__, "transformers": transformers.__version__,
                  "next_token": tokenizer.decode([int(logits[0, -1].argmax())])},
    )
    print(f"smollm2_reference: {ids.shape[1]} tokens, next {tokenizer.decode([int(logits[0, -1].argmax())])!r}: {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
