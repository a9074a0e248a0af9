#!/usr/bin/env python3
"""Compares polymoe::HfTokenizer (through tests/tokenizers/hf_tokenize_tool) with the Python tokenizers
library on whole files of real text: every fortune file in English, German, Russian and Spanish, a few
man pages as plain text, and every Unicode code point in runs mixed with spaces, letters and digits.

    check_hf_tokenizer.py HF_TOKENIZE_TOOL FIXTURE_DIR WORK_DIR [PREFIX...]

PREFIX (fortunes/, man/, unicode/) keeps only the texts whose name starts with one of them.

Ids (without and with special tokens) and decode must be equal for every text. Exit status 1 on any
difference, after printing where the first ones are."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tokenizers import Tokenizer

FORTUNES = Path("/usr/share/games/fortunes")
# Whole real texts for the main families; every fixture gets the man pages and the code points.
REAL_TEXT_FIXTURES = ["gpt2", "llama3", "qwen2", "sp_metaspace", "nfkc_lowercase"]
FIXTURES = os.environ.get("HF_INTEROP_FIXTURES", " ".join(REAL_TEXT_FIXTURES + [
    "gpt2_prefix_space", "smollm2", "sp_prepend_replace", "classic_prefix", "suffix_words", "split_behaviors",
    "edge_added_mix", "edge_bert_suffix", "edge_llama2_legacy_extras"])).split()
# Real tokenizers fetched by the installer, checked on everything when they are there.
REAL_FOLDERS = ["models/smollm2-135m"]
MAN_PAGES = ["bash", "ls", "grep", "tar", "find", "sed", "cmake", "git"]


def fortune_files():
    texts = {}
    for sub in ["", "de", "ru", "es"]:
        folder = FORTUNES / sub if sub else FORTUNES
        for p in sorted(folder.iterdir()):
            if p.is_dir() or p.is_symlink() or p.suffix in (".dat", ".u8"):
                continue
            try:
                texts[f"fortunes/{sub + '/' if sub else ''}{p.name}"] = p.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                pass
    return texts


def man_pages():
    texts = {}
    env = dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0")
    for name in MAN_PAGES:
        try:
            out = subprocess.run(["man", "-P", "cat", name], capture_output=True, env=env, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout:
            text = out.stdout.decode("utf-8", "replace")
            # Drop overstrike (bold and underline as char-backspace-char).
            cleaned = []
            for ch in text:
                if ch == "\b":
                    if cleaned:
                        cleaned.pop()
                else:
                    cleaned.append(ch)
            texts[f"man/{name}"] = "".join(cleaned)
    return texts


def code_points():
    """All scalar values in blocks of 1024, each character between others of several classes."""
    texts = {}
    glue = [" ", "a", "1", "  ", "'s", "\n", ".", "Ж", "\u0301", "\u00a0"]
    for start in range(0, 0x110000, 1024):
        chars = [chr(c) for c in range(start, start + 1024) if not 0xD800 <= c <= 0xDFFF]
        if not chars:
            continue
        parts = []
        for k, ch in enumerate(chars):
            parts.append(ch)
            if k % 3 == 0:
                parts.append(glue[k % len(glue)])
            if k % 7 == 0:
                parts.append(ch)
        texts[f"unicode/U+{start:06X}"] = "".join(parts)
    return texts


def main():
    tool, fixture_dir, work = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    work.mkdir(parents=True, exist_ok=True)
    corpus = {**fortune_files(), **man_pages(), **code_points()}
    if sys.argv[4:]:
        corpus = {n: t for n, t in corpus.items() if any(n.startswith(p) for p in sys.argv[4:])}
    size = sum(len(t.encode()) for t in corpus.values())
    print(f"{len(corpus)} texts, {size / 1e6:.1f} MB ({sum(n.startswith('man/') for n in corpus)} man pages)")
    failures = 0
    root = fixture_dir.resolve().parent.parent.parent
    runs = [(f, fixture_dir / f"{f}.tokenizer.json", f in REAL_TEXT_FIXTURES) for f in FIXTURES]
    runs += [(f, root / f, True) for f in REAL_FOLDERS if (root / f / "tokenizer.json").exists()]
    for fixture, path, real_text in runs:
        tok = Tokenizer.from_file(str(path / "tokenizer.json" if path.is_dir() else path))
        names = [n for n in corpus if real_text or not n.startswith("fortunes/")]
        texts = [corpus[n] for n in names]
        for special in (False, True):
            stem = fixture.replace("/", "_")
            inp, out = work / f"{stem}-{int(special)}.in.json", work / f"{stem}-{int(special)}.out.json"
            inp.write_text(json.dumps({"texts": texts, "add_special_tokens": special}, ensure_ascii=False), encoding="utf-8")
            t0 = time.perf_counter()
            subprocess.run([tool, str(path), str(inp), str(out)], check=True)
            t1 = time.perf_counter()
            got = json.loads(out.read_text(encoding="utf-8"))
            t2 = time.perf_counter()
            if tok.padding is None:
                want = [e.ids for e in tok.encode_batch(texts, add_special_tokens=special)]
            else:  # a batch pads to its longest text
                want = [tok.encode(t, add_special_tokens=special).ids for t in texts]
            bad = 0
            for name, text, w, g, d in zip(names, texts, want, got["ids"], got["decoded"]):
                if w != g:
                    bad += 1
                    if bad <= 3:
                        k = next((i for i, (a, b) in enumerate(zip(w, g)) if a != b), min(len(w), len(g)))
                        print(f"  {fixture}: {name}: ids differ at token {k} of {len(w)}: "
                              f"want {w[max(0, k - 3):k + 4]} got {g[max(0, k - 3):k + 4]} "
                              f"near {tok.decode(w[max(0, k - 5):k + 5], skip_special_tokens=False)!r}")
                elif not special and d != tok.decode(w, skip_special_tokens=False):
                    bad += 1
                    if bad <= 3:
                        print(f"  {fixture}: {name}: decode differs")
            ntok = sum(len(w) for w in want)
            print(f"{fixture} (special tokens {special}): {len(texts) - bad}/{len(texts)} texts equal, "
                  f"{ntok} tokens; C++ tool {t1 - t0:.1f} s (with JSON), Python batch {time.perf_counter() - t2:.1f} s")
            failures += bad
    print("OK" if failures == 0 else f"{failures} differences")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
