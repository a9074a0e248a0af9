#!/usr/bin/env python3
"""Builds the tokenizer.json fixtures of tests/tokenizers/tst_hf_tokenizer.cpp with the Python
`tokenizers` library itself, and records what that library gives for each test string (ids with and
without special tokens, decode) so that the C++ test runs without Python.

    LD_LIBRARY_PATH=/usr/local/cuda/lib64 .venv/bin/python tests/tools/make_hf_tokenizer_fixtures.py

Training text: the Debian fortunes (/usr/share/games/fortunes: English at the top, de/ ru/ es/).
Output: tests/data/tokenizer/{strings.json, NAME.tokenizer.json, NAME.expected.json}, malformed/ (also
alone with --malformed), and real_NAME.expected.json for the real tokenizers of REAL_MODELS found under
models/ (also alone with --real-models). The trainer may break ties differently from run to run: each
tokenizer.json is always written together with its expected ids.

    ... make_hf_tokenizer_fixtures.py --unicode-tables

measures instead the Unicode data each part of tokenizers uses (Oniguruma's categories, Rust's
lowercase, is_numeric and regex \w, unicode_categories' punctuation, the Unicode 9.0 normalization
tables of unicode-normalization-alignments) and writes core/hf_tokenizer/hf_tokenizer_unicode_tables.cpp."""

import json
import os
import random
import sys
from pathlib import Path

os.environ["RAYON_NUM_THREADS"] = "1"  # the BPE trainer's ties are broken the same way every run
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import tokenizers  # noqa: E402
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers  # noqa: E402

FORTUNES = Path("/usr/share/games/fortunes")
OUT = Path(__file__).resolve().parent.parent / "data" / "tokenizer"

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def fortune_entries(folder, recursive=False):
    """Entries (separated by % lines) of every fortune file in a folder, in file name order."""
    entries = []
    for path in sorted(folder.iterdir()):
        if path.is_dir() or path.suffix in (".dat", ".u8") or path.is_symlink():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for entry in text.split("\n%\n"):
            entry = entry.strip("\n")
            if entry and entry != "%" and "\x1b" not in entry:
                entries.append(entry)
    return entries


def corpus():
    return {"en": fortune_entries(FORTUNES), "de": fortune_entries(FORTUNES / "de"),
            "ru": fortune_entries(FORTUNES / "ru"), "es": fortune_entries(FORTUNES / "es")}


HARD = [
    "", " ", "  ", "   leading", "trailing   ", "\t", "\t\tTabs\tinside\t", "\n", "\n\n\n", "line1\nline2\r\nline3\r",
    " \n ", "a  b   c    d", "x \n\n y", "   \n\t  \n",
    "0", "12", "123", "1234", "12345678901234567890", "3.14159", "1,000,000.00", "x1y22z333", "٣٤٥ ١٢",
    "①②③ ⅻ Ⅻ", "²³ ¼",
    "I'm", "you'll", "he's", "IT'S", "We'LL", "don't", "they've", "'S'", "'s", "y'all'd", "rock'n'roll",
    "'S 'T 'RE 'VE 'M 'LL 'D", "ſ 'ſ 'K Kelvin", "‘curly’ “quotes”",
    "😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "I ❤️ NY", "🇩🇪🇷🇺", "a😀b😀😀c",
    "e\u0301", "café", "cafe\u0301", "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇", "\u0301leading mark",
    "日本語のテキスト", "中文测试，标点。", "한국어 텍스트", "ｆｕｌｌｗｉｄｔｈ ＡＢＣ１２３",
    "مرحبا بالعالم", "שלום עולם", "العربية 123 English", "עברית, with English!",
    "Привет, мир! Ёжик", "Καλημέρα κόσμε ΣΊΣΥΦΟΣ", "ς σ Σ", "Hello世界123мир😀", "x²+y³=z⁴",
    "ﬁnancial ﬂow ﬀ", "Ⅷ ㎏ ℃ ™", "İstanbul ıi İİ", "ẞ ß SS", "ǅungla ǈ", "ΐ ΰ",
    "\u0000nul", "\x7f del", "\x01\x02\x1f controls", "\u200b zero\u200bwidth", "\ufeffBOM", "\ufffd replacement",
    "\U0010ffff last", "\ue000 private", "\u00a0nbsp\u2003em space\u3000ideographic", "\u0085nel", "\u2028ls\u2029ps",
    "\u180e mongolian", "\u2060word joiner", "a\u200db\u200cc",
    "hello<|endoftext|>world", "<|endoftext|><|endoftext|>", "a <|endoftext|> b", " <|endoftext|>",
    "<|endoftext|>", "<|endoftext", "<|begin_of_text|>Hi<|end_of_text|>", "x<|im_start|>user\nhi<|im_end|>\n",
    "<s>Hello</s>", "<s> spaced </s>", "</s></s>", "<unk>", "[MASK] a [MASK]b", "tok [Mask] ok",
    "a<mask>b", "a <mask> b", "a   <mask>   b", "<mask><mask>", "foo bar foobar barfoo foo_ x foo",
    "xSEPy x SEP y", "[CLS] [SEP]", "@@@ @@@x x@@@", "BOLD bold Bold",
    "▁already▁has▁meta", " leading space", "▁", "▁▁ ▁", "two  spaces", "a ▁ b",
    "unknown ☃ chars 𝄞", "\u0e01\u0e32\u0e23", "ग्रन्थ हिन्दी", "ᚠᛇᚻ runes",
    "a" * 300, "supercalifragilisticexpialidocious" * 5, "-" * 100, " " * 50 + "x", "x" + "\n" * 20,
    "Hello, world! (test) [x] {y} <z> ...", "!!!???", "--==>>", "C++ & C# | a/b\\c", "e-mail: foo@bar.com, http://example.org/p?q=1&r=2",
    "def f(x):\n    return x**2  # comment\n", "if (a && b) { c(); }\n\ttab();", "$100 €50 £3 ¥9", "50% 3/4 1.5e-10",
    "ALL CAPS SHOUTING", "MiXeD cAsE wOrDs", "end.", "...", "'", "''", "'''", "\"quoted\"",
]


MAIN = {"gpt2", "llama3", "qwen2", "smollm2", "sp_metaspace", "nfkc_lowercase"}
FORTUNES_MAIN = 120   # fortunes per language for the main families
FORTUNES_OTHER = 40   # for the variants


def dumps(value, **kw):
    """UTF-8 JSON, with U+FEFF escaped: Qt's UTF-8 decoder drops it at the start of a string."""
    return json.dumps(value, ensure_ascii=False, **kw).replace("\ufeff", "\\ufeff")


def pick(entries, n, seed, max_bytes=500):
    pool = [e for e in entries if len(e.encode()) <= max_bytes]
    return random.Random(seed).sample(pool, min(n, len(pool)))


def train(tok, texts, vocab_size, special, **kw):
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special, show_progress=False, **kw)
    tok.train_from_iterator(texts, trainer)
    return tok


def byte_level_alphabet():
    return pre_tokenizers.ByteLevel.alphabet()


def edit(tok, fn):
    """Round-trips the tokenizer through its JSON, letting fn change fields the Python API hides."""
    data = json.loads(tok.to_str())
    fn(data)
    return Tokenizer.from_str(json.dumps(data, ensure_ascii=False))


def add_byte_fallback(data):
    """Llama-2 style: <0x00>..<0xFF> in the model vocabulary right after the special tokens."""
    model = data["model"]
    vocab = model["vocab"]
    n_special = 3
    shifted = {t: (i if i < n_special else i + 256) for t, i in vocab.items()}
    for b in range(256):
        shifted[f"<0x{b:02X}>"] = n_special + b
    model["vocab"] = shifted
    model["byte_fallback"] = True
    model["fuse_unk"] = True
    model["unk_token"] = "<unk>"
    for t in data["added_tokens"]:
        if t["id"] >= n_special:
            t["id"] += 256


def build(texts):
    en, multi = texts["en"], texts["en"] + texts["de"] + texts["ru"] + texts["es"]
    out = {}

    # GPT-2: ByteLevel with its regex, no prefix space.
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    train(tok, en, 256 + 1 + 1500, ["<|endoftext|>"], initial_alphabet=byte_level_alphabet())
    out["gpt2"] = tok

    # GPT-2 with add_prefix_space, RobertaProcessing, a lstrip <mask> (RoBERTa's added tokens).
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    train(tok, en, 256 + 5 + 600, ["<s>", "<pad>", "</s>", "<unk>", "<mask>"], initial_alphabet=byte_level_alphabet())
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, normalized=False)])
    tok.post_processor = processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>")))
    out["gpt2_prefix_space"] = tok

    # Llama-3: Split with its regex, ByteLevel without regex, ignore_merges, a BOS template.
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|end_of_text|>"] + [f"<|reserved_special_token_{i}|>" for i in range(4)]
    train(tok, multi, 256 + len(specials) + 2000, [], initial_alphabet=byte_level_alphabet())
    tok.add_special_tokens(specials)
    tok = edit(tok, lambda d: d["model"].__setitem__("ignore_merges", True))
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
                                      special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))])])
    out["llama3"] = tok

    # Qwen2: single digits in the regex, NFC, chat tokens; merges stored as "a b" strings (legacy).
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    train(tok, multi, 256 + 3 + 900, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], initial_alphabet=byte_level_alphabet())

    def legacy_merges(d):
        d["model"]["merges"] = [" ".join(m) for m in d["model"]["merges"]]
    tok = edit(tok, legacy_merges)
    out["qwen2"] = tok

    # SmolLM2: individual digits then ByteLevel; padding to a multiple of 8.
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    train(tok, en, 256 + 3 + 700, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], initial_alphabet=byte_level_alphabet())
    tok.enable_padding(pad_id=0, pad_token="<|endoftext|>", pad_to_multiple_of=8)
    out["smollm2"] = tok

    # SentencePiece-style BPE (Mistral conversion): Metaspace prepend_scheme first, no split,
    # byte_fallback, fuse_unk, a <s> template.
    sp_texts = multi
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    train(tok, sp_texts, 3 + 120 + 1200, ["<unk>", "<s>", "</s>"], limit_alphabet=120)
    tok = edit(tok, add_byte_fallback)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace(replacement="▁", prepend_scheme="first"),
                                     decoders.Fuse()])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", tok.token_to_id("<s>"))])
    sp_base = tok.to_str()
    out["sp_metaspace"] = tok

    # Llama-2 legacy conversion: normalizer Prepend + Replace, no pre-tokenizer, decoder Replace,
    # ByteFallback, Fuse, Strip; left truncation to 40 tokens.
    tok = Tokenizer.from_str(sp_base)
    tok.pre_tokenizer = None
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(content=" ", left=1, right=0)])
    tok.enable_truncation(max_length=40, direction="left")
    out["sp_prepend_replace"] = tok

    # NFKC + Lowercase, ByteLevel with prefix space; added tokens normalized or not, lstrip, rstrip,
    # single_word.
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    train(tok, multi, 256 + 2 + 800, ["<|endoftext|>", "[CLS]"], initial_alphabet=byte_level_alphabet())
    tok.add_tokens([AddedToken("[Mask]", normalized=True), AddedToken("foo", single_word=True, normalized=True),
                    AddedToken("BOLD", normalized=False, rstrip=True), AddedToken("<mask>", lstrip=True, rstrip=True, normalized=False),
                    AddedToken("SEP", single_word=True, normalized=False), AddedToken("@@@", normalized=True, lstrip=True)])
    tok.add_special_tokens([AddedToken("[SEP]", normalized=False), AddedToken("ĠHello", normalized=False)])
    tok.post_processor = processors.BertProcessing(("[SEP]", tok.token_to_id("[SEP]")), ("[CLS]", tok.token_to_id("[CLS]")))
    out["nfkc_lowercase"] = tok

    # Classic BPE: unk token (no byte level), ## continuing prefix, Whitespace, a WordPiece decoder.
    tok = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##"))
    tok.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents(), normalizers.Strip()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")
    train(tok, multi, 700, ["[UNK]", "[PAD]"], continuing_subword_prefix="##", limit_alphabet=90)
    out["classic_prefix"] = tok

    # end_of_word_suffix, BPEDecoder, WhitespaceSplit + Punctuation + Digits, Replace with a regex.
    tok = Tokenizer(models.BPE(unk_token="<unk>", end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence([normalizers.Replace(Regex(r"\s{2,}"), " "), normalizers.NFKD(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation("contiguous"),
                                                 pre_tokenizers.Digits(individual_digits=False)])
    tok.decoder = decoders.BPEDecoder(suffix="</w>")
    train(tok, en, 600, ["<unk>"], end_of_word_suffix="</w>", limit_alphabet=80)
    tok = edit(tok, lambda d: d["model"].__setitem__("fuse_unk", True))
    out["suffix_words"] = tok

    # Split behaviours and Metaspace with split into ByteLevel-free pieces.
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(" ", behavior="merged_with_next"),
        pre_tokenizers.Split(Regex(r"[,.;:!?]"), behavior="merged_with_previous"),
        pre_tokenizers.Split(Regex(r"\d"), behavior="contiguous"),
        pre_tokenizers.Split(Regex(r"[aeiou]+"), behavior="removed", invert=True),
        pre_tokenizers.Split(Regex(r"^\S|\s$"), behavior="isolated"),
        pre_tokenizers.Punctuation("merged_with_next"),
        pre_tokenizers.CharDelimiterSplit("x"),
        pre_tokenizers.Metaspace(replacement="_", prepend_scheme="always", split=True)])
    tok.decoder = decoders.Metaspace(replacement="_", prepend_scheme="always")
    train(tok, en, 500, ["<unk>", "<sep>"], limit_alphabet=100)
    tok.add_tokens([AddedToken("<sep>", special=False, normalized=False)])
    out["split_behaviors"] = tok
    return out


BASE = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
        "pre_tokenizer": None, "post_processor": None, "decoder": None,
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {"a": 0, "b": 1, "ab": 2, "c": 3}, "merges": ["a b"]}}


def malformed(name, change):
    data = json.loads(json.dumps(BASE))
    change(data)
    return name, json.dumps(data, ensure_ascii=False)


def write_malformed():
    """Broken files for the error messages; the test checks a substring of each message."""
    folder = OUT / "malformed"
    folder.mkdir(exist_ok=True)
    gpt2 = (OUT / "gpt2.tokenizer.json").read_text(encoding="utf-8")
    files = [
        ("truncated.json", gpt2[:700]),
        ("not_json.json", "this is not JSON {\n"),
        ("empty.json", ""),
        ("array.json", "[1, 2, 3]"),
        malformed("no_model.json", lambda d: d.pop("model")),
        malformed("merge_unknown_token.json", lambda d: d["model"].__setitem__("merges", ["a b", "ab zz"])),
        malformed("merge_result_unknown.json", lambda d: d["model"].__setitem__("merges", ["a b", "b c"])),
        malformed("merge_three_parts.json", lambda d: d["model"].__setitem__("merges", ["a b c"])),
        malformed("merges_not_array.json", lambda d: d["model"].__setitem__("merges", "a b")),
        malformed("id_negative.json", lambda d: d["model"]["vocab"].__setitem__("c", -3)),
        malformed("id_huge.json", lambda d: d["model"]["vocab"].__setitem__("c", 4294967296)),
        malformed("id_not_integer.json", lambda d: d["model"]["vocab"].__setitem__("c", 2.5)),
        malformed("duplicate_ids.json", lambda d: d["model"]["vocab"].__setitem__("c", 1)),
        malformed("unsupported_pre_tokenizer.json", lambda d: d.__setitem__("pre_tokenizer", {
            "type": "Sequence", "pretokenizers": [{"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                                                   "use_regex": True}, {"type": "UnicodeScripts"}]})),
        malformed("unsupported_model.json", lambda d: d.__setitem__("model", {"type": "WordPiece", "unk_token": "[UNK]",
                  "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": {"[UNK]": 0}})),
        malformed("dropout.json", lambda d: d["model"].__setitem__("dropout", 0.1)),
        malformed("bad_regex.json", lambda d: d.__setitem__("pre_tokenizer", {
            "type": "Split", "pattern": {"Regex": "(ab"}, "behavior": "Isolated", "invert": False})),
        malformed("bad_behavior.json", lambda d: d.__setitem__("pre_tokenizer", {
            "type": "Split", "pattern": {"String": " "}, "behavior": "Sideways", "invert": False})),
        malformed("template_unknown_special.json", lambda d: d.__setitem__("post_processor", {
            "type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                                     {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [], "special_tokens": {}})),
        malformed("version.json", lambda d: d.__setitem__("version", "2.0")),
        malformed("added_token_negative_id.json", lambda d: d.__setitem__("added_tokens", [
            {"id": -1, "content": "<x>", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
             "special": True}])),
        malformed("type_not_a_name.json", lambda d: d.__setitem__("normalizer", {"type": "NFC\u0000\n{\"x\": 1}"})),
    ]
    for name, text in files:
        (folder / name).write_text(text, encoding="utf-8")


def case(tok, index, text, with_special):
    """What the library gives for one text; index into strings.json, or None to store the text."""
    enc = tok.encode(text, add_special_tokens=False).ids
    rec = {"s": index, "ids": enc} if index is not None else {"t": text, "ids": enc}
    dec = tok.decode(enc, skip_special_tokens=False)
    rec["roundtrip"] = dec == text
    if dec != text:
        rec["decoded"] = dec
    if with_special:
        sp = tok.encode(text, add_special_tokens=True).ids
        if sp != enc:
            rec["special"] = sp
        skip = tok.decode(sp, skip_special_tokens=True)
        if skip != dec:
            rec["decoded_skip"] = skip
    return rec


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    texts = corpus()
    langs = ["en", "de", "ru", "es"]
    samples = {lang: pick(texts[lang], FORTUNES_MAIN, seed=17 + i) for i, lang in enumerate(langs)}
    strings = {"hard": HARD, "fortunes": samples}
    (OUT / "strings.json").write_text(dumps(strings, indent=0) + "\n", encoding="utf-8")
    all_texts = HARD + [t for lang in langs for t in samples[lang]]
    for name, tok in build(texts).items():
        # The main families get every fortune, the variants the first FORTUNES_OTHER of each language.
        per_lang = FORTUNES_MAIN if name in MAIN else FORTUNES_OTHER
        chosen = list(range(len(HARD))) + [len(HARD) + k * FORTUNES_MAIN + j for k in range(len(langs)) for j in range(per_lang)]
        (OUT / f"{name}.tokenizer.json").write_text(tok.to_str() + "\n", encoding="utf-8")
        tok = Tokenizer.from_file(str(OUT / f"{name}.tokenizer.json"))
        cases = [case(tok, i, all_texts[i], i < len(HARD)) for i in chosen]
        vocab = tok.get_vocab(with_added_tokens=True)
        probe_ids = sorted(set(list(range(0, 12)) + [max(vocab.values()) - k for k in range(4)]))
        expected = {
            "library": f"tokenizers {tokenizers.__version__}",
            "tokenizer": f"{name}.tokenizer.json",
            "vocab_size": max(vocab.values()) + 1,
            "id_to_token": {str(i): tok.id_to_token(i) for i in probe_ids if tok.id_to_token(i) is not None},
            "token_to_id": {t: tok.token_to_id(t) for t in ["<unk>", "<s>", "</s>", "<|endoftext|>", "the", "Ġthe", "▁the", "[Mask]", "[mask]"]
                            if tok.token_to_id(t) is not None},
            "cases": cases,
        }
        with open(OUT / f"{name}.expected.json", "w", encoding="utf-8") as f:
            f.write("{\n")
            items = list(expected.items())
            for k, (key, value) in enumerate(items):
                if key == "cases":
                    f.write('"cases": [\n' + ",\n".join(dumps(c, separators=(",", ":")) for c in value) + "\n]")
                else:
                    f.write(json.dumps(key) + ": " + dumps(value))
                f.write(",\n" if k + 1 < len(items) else "\n")
            f.write("}\n")
        print(f"{name}: {len(cases)} cases, vocab {expected['vocab_size']}", file=sys.stderr)
    write_malformed()
    write_real_models(all_texts, len(HARD))
    write_edge()


def write_edge():
    for name, data in build_edge().items():
        text = json.dumps(data, ensure_ascii=False, indent=1)
        (OUT / f"edge_{name}.tokenizer.json").write_text(text + "\n", encoding="utf-8")
        tok = Tokenizer.from_str(text)
        cases = []
        for i, t in [(None, t) for t in EDGE_TEXTS] + list(enumerate(HARD))[::2]:
            try:
                cases.append(case(tok, i, t, True))
            except BaseException:  # tokenizers panics on some (BPEDecoder on no tokens): left out
                pass
        expected = {"library": f"tokenizers {tokenizers.__version__}", "tokenizer": f"edge_{name}.tokenizer.json",
                    "vocab_size": max(tok.get_vocab(with_added_tokens=True).values()) + 1}
        with open(OUT / f"edge_{name}.expected.json", "w", encoding="utf-8") as f:
            f.write("{\n" + "".join(f"{json.dumps(k)}: {dumps(v)},\n" for k, v in expected.items()))
            f.write('"cases": [\n' + ",\n".join(dumps(c, separators=(",", ":")) for c in cases) + "\n]\n}\n")
        print(f"edge {name}: {len(cases)} cases", file=sys.stderr)


# Real tokenizers fetched by the installer (models/ is not committed): their ids for the hard strings
# and a few fortunes are, so the test can check the folder when it is there.
REAL_MODELS = {"smollm2-135m": "models/smollm2-135m"}


def write_real_models(all_texts, n_hard):
    root = Path(__file__).resolve().parent.parent.parent
    for name, folder in REAL_MODELS.items():
        path = root / folder / "tokenizer.json"
        if not path.exists():
            print(f"{folder}: absent, real_{name}.expected.json left as it is", file=sys.stderr)
            continue
        tok = Tokenizer.from_file(str(path))
        config = json.loads((root / folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        specials = {}
        for key in ["bos", "eos", "unk", "pad"]:
            value = config.get(f"{key}_token")
            if isinstance(value, dict):
                value = value.get("content")
            found = tok.token_to_id(value) if isinstance(value, str) else None
            specials[key] = -1 if found is None else found
        chosen = list(range(n_hard)) + [n_hard + k * FORTUNES_MAIN + j for k in range(4) for j in range(20)]
        vocab = tok.get_vocab(with_added_tokens=True)
        expected = {"library": f"tokenizers {tokenizers.__version__}", "folder": folder,
                    "bytes": path.stat().st_size, "vocab_size": max(vocab.values()) + 1, "special_tokens": specials}
        with open(OUT / f"real_{name}.expected.json", "w", encoding="utf-8") as f:
            f.write("{\n" + "".join(f"{json.dumps(k)}: {dumps(v)},\n" for k, v in expected.items()))
            f.write('"cases": [\n' + ",\n".join(dumps(case(tok, i, all_texts[i], i < n_hard), separators=(",", ":"))
                                              for i in chosen) + "\n]\n}\n")
        print(f"real {name}: {len(chosen)} cases", file=sys.stderr)


# ---- Hand-written edge cases ------------------------------------------------------------------------

def build_edge():
    """Small hand-made tokenizer.json files for options the trained fixtures leave out: added tokens
    with whitespace, lstrip/rstrip/single_word together, an empty one; legacy Metaspace; truncation,
    template and left padding; a model without "type" and a #version merges line; prefix with byte
    fallback; Bert normalizer, pre-tokenizer and processing; BPEDecoder; Strip and Replace; ByteLevel in
    the middle of a sequence."""
    chars = list("abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.,!?'-0123456789") + ["▁", "Ġ", "##a", "##b", "##c", "a</w>", "b</w>", "c</w>"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for c in chars:
        vocab.setdefault(c, len(vocab))
    for t in ["ab", "abc", "▁a", "▁ab", "he", "hel", "hell", "hello", "##ab", "ab</w>", "th", "the", "in", "ing"]:
        vocab.setdefault(t, len(vocab))
    for b in range(256):
        vocab.setdefault(f"<0x{b:02X}>", len(vocab))
    merges = ["a b", "ab c", "▁ a", "▁a b", "h e", "he l", "hel l", "hell o", "t h", "th e", "i n", "in g"]
    def base(**model):
        m = {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None, "end_of_word_suffix": None,
             "fuse_unk": False, "byte_fallback": False, "ignore_merges": False, "vocab": vocab, "merges": merges}
        m.update(model)
        return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None, "pre_tokenizer": None,
                "post_processor": None, "decoder": None, "model": m}
    def added(id, content, **kw):
        t = {"id": id, "content": content, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": False}
        t.update(kw); return t
    cases = {}
    t = base(); t["added_tokens"] = [added(0, "<unk>", special=True), added(1, "<s>", special=True), added(2, "</s>", special=True),
        added(500, "  ", rstrip=True), added(501, " x", lstrip=True), added(502, "yy", single_word=True, lstrip=True, rstrip=True),
        added(503, "ab", normalized=True), added(504, ""), added(505, "QQ", single_word=True, normalized=True), added(999, "ZZ")]
    t["pre_tokenizer"] = {"type": "WhitespaceSplit"}
    cases["added_mix"] = t
    t = base(); t["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "NFKD"}, {"type": "Lowercase"}, {"type": "Replace", "pattern": {"String": "."}, "content": "!"}]}
    t["pre_tokenizer"] = {"type": "Metaspace", "replacement": "▁", "add_prefix_space": True}
    t["decoder"] = {"type": "Metaspace", "replacement": "▁", "add_prefix_space": True}
    t["added_tokens"] = [added(1, "<s>", special=True)]
    t["truncation"] = {"direction": "Right", "max_length": 7, "strategy": "LongestFirst", "stride": 0}
    t["padding"] = {"strategy": {"Fixed": 10}, "direction": "Left", "pad_to_multiple_of": None, "pad_id": 2, "pad_type_id": 0, "pad_token": "</s>"}
    t["post_processor"] = {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
        "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}, "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}}
    cases["legacy_metaspace_trunc_pad"] = t
    t = base(continuing_subword_prefix="##", byte_fallback=True, fuse_unk=True); t["model"].pop("type")
    t["model"]["merges"] = ["#version: 0.2", "a ##b", "##a ##b", "h ##e"]
    for tk in ["##e", "##h", "##l", "##o", "he", "##ab"]: vocab.setdefault(tk, len(vocab))
    t["pre_tokenizer"] = {"type": "Whitespace"}; t["decoder"] = {"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "WordPiece", "prefix": "##", "cleanup": True}]}
    cases["prefix_fallback_untyped"] = t
    t = base(end_of_word_suffix="</w>", fuse_unk=True); t["model"]["merges"] = [m for m in merges if not m.startswith("▁")] + ["a b</w>"]
    t["pre_tokenizer"] = {"type": "BertPreTokenizer"}; t["normalizer"] = {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True, "strip_accents": None, "lowercase": True}
    t["decoder"] = {"type": "BPEDecoder", "suffix": "</w>"}
    t["post_processor"] = {"type": "BertProcessing", "sep": ["</s>", 2], "cls": ["<s>", 1]}
    cases["bert_suffix"] = t
    t = base(byte_fallback=True, ignore_merges=True)
    t["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "Strip", "strip_left": True, "strip_right": False}, {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"Regex": " +"}, "content": "▁"}, {"type": "NFC"}]}
    t["decoder"] = {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 1}]}
    t["added_tokens"] = [added(1, "<s>", special=True, normalized=False), added(2, "</s>", special=True, normalized=True), added(600, "Hey", normalized=True, rstrip=True)]
    cases["llama2_legacy_extras"] = t
    t = base(); t["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": False}, {"type": "Punctuation", "behavior": "MergedWithPrevious"}, {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": False}, {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "MergedWithNext", "invert": False}]}
    t["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    cases["bytelevel_middle"] = t
    return cases


EDGE_TEXTS = ["", " ", "hello world", "Hello  World!!", "abc abcab  x xx yy ayy yy. QQ qq", "  ab <s></s>ab</s> ", "İstanbul ﬁ Ǆ ½ café",
         "the thing 123 4567 a.b,c!", "日本 ☃ 😀 x", "a  \t\n b", "yy yy", "\u00a0ab\u3000ab", "<s>", "Hey  you Hey", "He\u0301llo", "ZZ ZZZ",
         "abc" * 20, "x" * 5 + " " * 5 + "x", "don't stop", "a</w>b", "##ab ab##", "▁▁a ▁", "\t\tindent", "1,000.5", "HELLO"]


# ---- Unicode tables ---------------------------------------------------------------------------------

ONIG_CATEGORIES = ["L", "Lu", "Ll", "Lt", "Lm", "Lo", "M", "Mn", "Mc", "Me", "N", "Nd", "Nl", "No", "P", "Pc", "Pd",
                   "Ps", "Pe", "Pi", "Pf", "Po", "S", "Sm", "Sc", "Sk", "So", "Z", "Zs", "Zl", "Zp"]
SCALARS = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]


def ranges(members):
    out = []
    for c in sorted(members):
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


def alternating(pieces, first_class, text_len):
    """Membership from pieces that alternate between two classes (a Contiguous split)."""
    members, cls, pos = set(), first_class, 0
    for _, (start, end) in pieces:
        assert start == pos, (start, pos)
        if cls:
            members.update(range(start, end))
        cls, pos = not cls, end
    assert pos == text_len
    return members


def measure_onig(category, text):
    kept = pre_tokenizers.Split(Regex(r"\p{%s}" % category), behavior="removed").pre_tokenize_str(text)
    outside = set()
    for _, (start, end) in kept:
        outside.update(range(start, end))
    return {SCALARS[i] for i in range(len(SCALARS)) if i not in outside}


def measure_tables():
    import ctypes
    import unicodedata
    text = "".join(chr(c) for c in SCALARS)
    tables = {}
    # Oniguruma (tokenizers' Split and Replace patterns) against PCRE2, whose tables are Python's
    # unicodedata version (14.0.0 for both here).
    for cat in ONIG_CATEGORIES:
        onig = measure_onig(cat, text)
        pcre = {c for c in SCALARS if unicodedata.category(chr(c)).startswith(cat)}
        missing = pcre - onig
        if missing:
            print(f"warning: \\p{{{cat}}}: in PCRE2 but not in Oniguruma: {' '.join(f'U+{c:04X}' for c in sorted(missing))}",
                  file=sys.stderr)
        tables[f"onig_{cat}"] = ranges(onig - pcre)
    # Rust char::is_numeric (Digits), tokenizers' is_punc (Punctuation), Rust regex \w (Whitespace,
    # single_word): whole tables. Each text starts with a character of known class.
    digits = pre_tokenizers.Digits(individual_digits=False).pre_tokenize_str("a" + text)
    tables["numeric"] = ranges(SCALARS[i - 1] for i in alternating(digits, False, len(text) + 1) if i > 0)
    punct = pre_tokenizers.Punctuation("contiguous").pre_tokenize_str("a" + text)
    tables["punctuation"] = ranges(SCALARS[i - 1] for i in alternating(punct, False, len(text) + 1) if i > 0)
    spaces = {c for c in SCALARS if chr(c).isspace() or c in (0x85,)}
    rust_space = set()
    for _, (start, end) in pre_tokenizers.WhitespaceSplit().pre_tokenize_str("a" + text):
        rust_space.update(range(start, end))
    rust_space = {SCALARS[i - 1] for i in range(1, len(text) + 1) if i not in rust_space}
    expected_space = {9, 10, 11, 12, 13, 32, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000} | set(range(0x2000, 0x200B))
    assert rust_space == expected_space, sorted(rust_space ^ expected_space)
    no_space = [c for c in SCALARS if c not in expected_space]
    words = pre_tokenizers.Whitespace().pre_tokenize_str("a" + "".join(chr(c) for c in no_space))
    tables["rust_word"] = ranges(no_space[i - 1] for i in alternating(words, True, len(no_space) + 1) if i > 0)
    del spaces
    # Rust char::to_lowercase (Lowercase), one character at a time between separators.
    upper = [c for c in SCALARS if c >= 0x80]
    lowered = normalizers.Lowercase().normalize_str("\x01".join(chr(c) for c in upper)).split("\x01")
    assert len(lowered) == len(upper)
    lower = []
    for c, l in zip(upper, lowered):
        if l != chr(c) and c >= 0x80:
            if len(l) != 1:
                assert c == 0x130, hex(c)
                continue
            lower.append((c, ord(l)))
    tables["lowercase"] = lower
    # is_combining_mark of unicode-normalization-alignments (StripAccents): Unicode 9.0 marks.
    stripped = normalizers.StripAccents().normalize_str("\x01".join(chr(c) for c in upper)).split("\x01")
    assert len(stripped) == len(upper)
    tables["combining_mark"] = ranges(c for c, t in zip(upper, stripped) if t == "")
    # BertNormalizer: clean_text's is_other and strip_accents' is_mark_nonspacing (unicode_categories).
    def removed_by(normalizer, separator):
        out = normalizer.normalize_str(separator.join(chr(c) for c in upper)).split(separator)
        assert len(out) == len(upper)
        return [c for c, t in zip(upper, out) if t == ""]
    tables["bert_other"] = ranges(c for c in removed_by(normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False), "a") if c != 0xFFFD)
    tables["bert_mn"] = ranges(removed_by(normalizers.BertNormalizer(
        clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=False), "\x01"))
    # Code points assigned after Unicode 9.0 (ICU's u_charAge): tokenizers' normalization tables
    # (unicode-normalization-alignments) are Unicode 9.0, so it leaves them alone.
    icu = ctypes.CDLL("libicuuc.so.72")
    age = icu.u_charAge_72
    age.argtypes = [ctypes.c_int32, ctypes.c_uint8 * 4]
    buf = (ctypes.c_uint8 * 4)()
    post9 = []
    for c in SCALARS:
        age(c, buf)
        if (buf[0], buf[1]) > (9, 0):
            post9.append(c)
    tables["post9"] = ranges(post9)
    return tables


def write_tables(path):
    tables = measure_tables()
    lines = ["// Unicode data as tokenizers sees it, measured from the Python library by",
             "// tests/tools/make_hf_tokenizer_fixtures.py --unicode-tables (tokenizers %s). Do not edit." % tokenizers.__version__,
             '#include "hf_tokenizer_internal.h"', "", "namespace polymoe::detail::hf {", "", "namespace {", ""]

    def emit(name, rs):
        lines.append(f"const CodeRange {name}[] = {{")
        row = []
        for a, b in rs:
            row.append(f"{{0x{a:X}, 0x{b:X}}},")
            if len(row) == 6:
                lines.append("    " + " ".join(row))
                row = []
        if row:
            lines.append("    " + " ".join(row))
        if not rs:
            lines.append("    {0, 0},")
        lines.append("};")
        lines.append("")

    for cat in ONIG_CATEGORIES:
        emit(f"kOnig{cat}", tables[f"onig_{cat}"])
    emit("kNumeric", tables["numeric"])
    emit("kPunctuation", tables["punctuation"])
    emit("kRustWord", tables["rust_word"])
    emit("kPost9", tables["post9"])
    emit("kCombiningMark", tables["combining_mark"])
    emit("kBertOther", tables["bert_other"])
    emit("kBertNonspacingMark", tables["bert_mn"])
    lines.append("const CodePair kLowercase[] = {")
    row = []
    for a, b in tables["lowercase"]:
        row.append(f"{{0x{a:X}, 0x{b:X}}},")
        if len(row) == 6:
            lines.append("    " + " ".join(row))
            row = []
    if row:
        lines.append("    " + " ".join(row))
    lines += ["};", "", "template <size_t N>", "constexpr RangeTable table(const CodeRange (&r)[N], bool empty = false)",
              "{", "    return RangeTable{r, empty ? 0 : N};", "}", "", "} // namespace", ""]
    lines.append("const OnigCategoryExtra kOnigCategoryExtras[] = {")
    for cat in ONIG_CATEGORIES:
        lines.append(f'    {{"{cat}", table(kOnig{cat}, {"true" if not tables["onig_" + cat] else "false"})}},')
    lines += ["};", f"const size_t kOnigCategoryExtraCount = {len(ONIG_CATEGORIES)};",
              "const RangeTable kNumericTable = table(kNumeric);",
              "const RangeTable kPunctuationTable = table(kPunctuation);",
              "const RangeTable kRustWordTable = table(kRustWord);",
              "const RangeTable kPost9Table = table(kPost9);",
              "const RangeTable kCombiningMarkTable = table(kCombiningMark);",
              "const RangeTable kBertOtherTable = table(kBertOther);",
              "const RangeTable kBertNonspacingMarkTable = table(kBertNonspacingMark);",
              "const CodePair *const kLowercaseTable = kLowercase;",
              "const size_t kLowercaseCount = sizeof kLowercase / sizeof kLowercase[0];",
              "", "} // namespace polymoe::detail::hf", ""]
    Path(path).write_text("\n".join(lines), encoding="utf-8")
    sizes = {k: len(v) for k, v in tables.items()}
    print(f"wrote {path}: {sizes}", file=sys.stderr)


if __name__ == "__main__":
    if sys.argv[1:] == ["--unicode-tables"]:
        write_tables(Path(__file__).resolve().parent.parent.parent / "core" / "hf_tokenizer" / "hf_tokenizer_unicode_tables.cpp")
        sys.exit(0)
    if sys.argv[1:] == ["--real-models"]:
        strings = json.loads((OUT / "strings.json").read_text(encoding="utf-8"))
        write_real_models(strings["hard"] + [t for lang in ["en", "de", "ru", "es"] for t in strings["fortunes"][lang]],
                          len(strings["hard"]))
        sys.exit(0)
    if sys.argv[1:] == ["--edge"]:
        write_edge()
        sys.exit(0)
    if sys.argv[1:] == ["--malformed"]:
        write_malformed()
        sys.exit(0)
    main()
