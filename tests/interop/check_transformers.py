#!/usr/bin/env python3
"""Loads `polymoe export` folders with Hugging Face transformers and compares the logits with the
ones PolyMoE computed (written by make_interop_fixtures). Label `interop` in ctest.

  check_transformers.py FIXTURE_DIR [--tol 1e-4]

For every FIXTURE_DIR/<case>/: export/polymoe with trust_remote_code=True, export/mixtral (when the
reference says so) with the stock MixtralForCausalLM, and no missing or unexpected weights. The
polymoe folder is also checked on a right-padded batch and with generate()."""
import argparse
import sys
import time
from pathlib import Path

import torch
from safetensors import safe_open
from transformers import AutoConfig, AutoModelForCausalLM


def load(folder, remote):
    model, info = AutoModelForCausalLM.from_pretrained(
        folder, trust_remote_code=remote, dtype=torch.float32, output_loading_info=True
    )
    problems = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if problems:
        raise AssertionError(f"{folder}: loading reported {problems}")
    return model.eval()


def compare(name, got, want, tol):
    err = (got - want).abs().max().item()
    ok = err <= tol
    print(f"  {name}: max |logits - PolyMoE| = {err:.3g} (tolerance {tol:g}) {'ok' if ok else 'FAIL'}")
    return ok


TOKENIZER_TEXTS = [
    "The capital of France is Paris.", "Der schnelle braune Fuchs springt über den faulen Hund.",
    "Съешь же ещё этих мягких французских булок", "  leading spaces\tand tabs\n\nnew lines  ",
    "12345 + 678 = 13023", "emoji 🎉👩‍👩‍👧 and CJK 中文字符", "<|begin_of_text|>inside<|end_of_text|>words",
]


def check_tokenizer(case):
    """The exported folders' tokenizer, read by AutoTokenizer, gives the tokenizers library's ids."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    ref = Tokenizer.from_file(str(case / "source" / "tokenizer.json"))
    ok = True
    for folder in [case / "export" / "polymoe", case / "export" / "mixtral"]:
        if not folder.is_dir():
            continue
        tok = AutoTokenizer.from_pretrained(folder)
        bad = [t for t in TOKENIZER_TEXTS
               if tok.encode(t, add_special_tokens=False) != ref.encode(t, add_special_tokens=False).ids]
        print(f"  {folder.name} tokenizer ({type(tok).__name__}): {len(TOKENIZER_TEXTS) - len(bad)}/"
              f"{len(TOKENIZER_TEXTS)} texts with the library's ids {'ok' if not bad else 'FAIL: ' + repr(bad[:2])}")
        ok &= not bad
    return ok


def check_case(case, tol):
    ref = safe_open(str(case / "reference.safetensors"), framework="pt")
    ids, want = ref.get_tensor("input_ids"), ref.get_tensor("logits")
    expect_mixtral = ref.metadata().get("mixtral") == "yes"
    print(f"{case.name}: input {tuple(ids.shape)}")
    ok = True

    meta = ref.metadata()
    if meta.get("dense") == "yes":
        src = case / "source"
        cfg = AutoConfig.from_pretrained(src)
        # The folder's own dtype and RoPE as transformers reads them (the weights are upcast to fp32
        # by load(), so both sides compute in fp32 on the same values).
        dtype = meta.get("dtype", "float32")
        with safe_open(str(src / "model.safetensors"), framework="pt") as f:
            stored = {f.get_slice(k).get_dtype() for k in f.keys()}
        want_st = {"float32": "F32", "bfloat16": "BF16", "float16": "F16"}[dtype]
        rope = (getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {}).get("rope_type", "default")
        meta_ok = stored == {want_st} and rope == meta.get("rope_type", "default")
        print(f"  saved dense folder: tensors {sorted(stored)}, rope_type {rope!r}, head_dim {cfg.head_dim}"
              f" {'ok' if meta_ok else 'FAIL (want ' + want_st + ', ' + meta.get('rope_type', 'default') + ')'}")
        ok &= meta_ok
        model = load(src, False)
        with torch.no_grad():
            ok &= compare(f"saved dense folder (stock {type(model).__name__})", model(input_ids=ids).logits, want, tol)

    if meta.get("exported", "yes") != "yes":
        return ok
    if meta.get("tokenizer") == "yes":
        ok &= check_tokenizer(case)

    poly = case / "export" / "polymoe"
    if not poly.is_dir():
        poly = case / "export"
    cfg = AutoConfig.from_pretrained(poly, trust_remote_code=True)
    assert cfg.model_type == "polymoe", f"{poly}: model_type {cfg.model_type}"
    model = load(poly, True)
    with torch.no_grad():
        ok &= compare("polymoe (remote code)", model(input_ids=ids).logits, want, tol)
        # Right padding must not change the real tokens' logits (mask, positions, classifier sum).
        n = ids.shape[1] - 5
        alone = model(input_ids=ids[:1, :n]).logits
        padded_ids = ids[:2].clone()
        padded_ids[0, n:] = 0
        mask = torch.ones_like(padded_ids)
        mask[0, n:] = 0
        padded = model(input_ids=padded_ids, attention_mask=mask).logits
        ok &= compare("polymoe, right-padded batch vs alone", padded[:1, :n], alone, tol)
        out = model.generate(ids[:1, :5], max_new_tokens=4, do_sample=False, use_cache=False)
        assert out.shape == (1, 9), f"generate returned {tuple(out.shape)}"
        # Greedy generation continues with the argmax of the full forward.
        step = model(input_ids=out[:, :-1]).logits[0, -1].argmax().item()
        ok &= step == out[0, -1].item()
        print(f"  polymoe generate: {out[0].tolist()} {'ok' if step == out[0, -1].item() else 'FAIL'}")

    mix = case / "export" / "mixtral"
    if expect_mixtral:
        cfg = AutoConfig.from_pretrained(mix)
        assert cfg.model_type == "mixtral", f"{mix}: model_type {cfg.model_type}"
        assert cfg.router_jitter_noise == 0 and not cfg.output_router_logits
        model = load(mix, False)
        assert type(model).__name__ == "MixtralForCausalLM", type(model).__name__
        with torch.no_grad():
            ok &= compare("mixtral (stock MixtralForCausalLM)", model(input_ids=ids).logits, want, tol)
            out = model.generate(ids[:1, :5], max_new_tokens=4, do_sample=False)
            print(f"  mixtral generate (with cache): {out[0].tolist()}")
    elif mix.exists():
        print(f"  {mix}: exists although the reference says Mixtral is not applicable: FAIL")
        ok = False
    return ok


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("fixtures", type=Path)
    p.add_argument("--tol", type=float, default=1e-4)
    a = p.parse_args()
    import transformers

    print(f"torch {torch.__version__}, transformers {transformers.__version__}")
    torch.manual_seed(0)
    start = time.time()
    cases = sorted(d for d in a.fixtures.iterdir() if (d / "reference.safetensors").is_file())
    if not cases:
        print(f"{a.fixtures}: no fixtures (run make_interop_fixtures first)")
        return 1
    ok = all([check_case(c, a.tol) for c in cases])
    print(f"{'all ok' if ok else 'FAILED'} ({len(cases)} cases, {time.time() - start:.1f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
