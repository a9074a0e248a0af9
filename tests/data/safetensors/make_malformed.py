#!/usr/bin/env python3
# Writes the small hand-made safetensors files that tests/core/tst_safetensors.cpp reads: one valid
# file with known values and unaligned offsets, and one malformed file per rejection the reader
# makes. Standard library only; run once from this folder and commit the outputs.
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(name, header_bytes, data=b"", length=None):
    """8-byte little-endian header length (the real one unless `length` overrides it), header, data."""
    if length is None:
        length = len(header_bytes)
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(struct.pack("<Q", length) + header_bytes + data)


def header(entries):
    return json.dumps(entries, separators=(",", ":")).encode()


def f32(*values):
    return struct.pack("<%df" % len(values), *values)


# Valid: F16 [3] = 1, -2, 0.5 at [0, 6]; F32 [2] = 3, -1.5 at [6, 14] (not 4-byte aligned);
# BF16 scalar 1.0 at [14, 16]; an empty I64 [0, 3] at [16, 16]; metadata.
write("valid.safetensors",
      header({"__metadata__": {"source": "make_malformed.py"},
              "a": {"dtype": "F16", "shape": [3], "data_offsets": [0, 6]},
              "b": {"dtype": "F32", "shape": [2], "data_offsets": [6, 14]},
              "c": {"dtype": "BF16", "shape": [], "data_offsets": [14, 16]},
              "e": {"dtype": "I64", "shape": [0, 3], "data_offsets": [16, 16]}}),
      struct.pack("<3e", 1.0, -2.0, 0.5) + f32(3.0, -1.5) + bytes([0x80, 0x3F]))

one = {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}

with open(os.path.join(HERE, "too_short.safetensors"), "wb") as f:
    f.write(b"\x05\x00\x00")  # not even the 8-byte length
write("header_past_eof.safetensors", header(one)[:20], length=1000)
write("header_huge.safetensors", header(one), f32(1, 2, 3, 4), length=1 << 62)
write("bad_json.safetensors", b'{"w": {"dtype": "F32", "shape": [4],, "data_offsets": [0, 16]}}', f32(1, 2, 3, 4))
write("not_object.safetensors", b"[1, 2, 3]")
write("duplicate_name.safetensors",
      b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
      f32(1, 2))
write("unknown_dtype.safetensors", header({"w": {"dtype": "Q7", "shape": [4], "data_offsets": [0, 16]}}),
      f32(1, 2, 3, 4))
write("unsupported_dtype.safetensors", header({"w": {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]}}),
      bytes(4))
write("bad_metadata.safetensors", header({"__metadata__": {"epochs": 3}, **one}), f32(1, 2, 3, 4))
write("offsets_out_of_range.safetensors",
      header({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
              "b": {"dtype": "F32", "shape": [4], "data_offsets": [1000, 1016]}}),
      f32(1, 2, 3, 4))
write("overlapping.safetensors",
      header({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
              "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}),
      f32(1, 2, 3, 4, 5, 6))
write("size_mismatch.safetensors", header({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 16]}}),
      f32(1, 2, 3, 4))
write("negative_shape.safetensors", header({"w": {"dtype": "F32", "shape": [-1, 4], "data_offsets": [0, 16]}}),
      f32(1, 2, 3, 4))
write("fractional_shape.safetensors", header({"w": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 16]}}),
      f32(1, 2, 3, 4))
write("reversed_offsets.safetensors", header({"w": {"dtype": "F32", "shape": [4], "data_offsets": [16, 0]}}),
      f32(1, 2, 3, 4))
write("missing_offsets.safetensors", header({"w": {"dtype": "F32", "shape": [4]}}), f32(1, 2, 3, 4))
write("truncated_data.safetensors", header({"w": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}}),
      f32(1, 2, 3, 4, 5))
write("hole.safetensors",
      header({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
              "b": {"dtype": "F32", "shape": [4], "data_offsets": [24, 40]}}),
      f32(1, 2, 3, 4, 0, 0, 5, 6, 7, 8))
write("trailing_bytes.safetensors", header(one), f32(1, 2, 3, 4) + b"junk")
