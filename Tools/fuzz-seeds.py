#!/usr/bin/env python3
"""Writes seed inputs for a fuzz target into a directory (standard library only).

Usage: fuzz-seeds.py npy|safetensors|png DIR
Seeds cover every dtype, version, colour type and row filter the readers accept, plus a few
near-misses (wrong dtype, Fortran order, truncated data) so the fuzzer starts next to the error paths.
"""
import json
import os
import struct
import sys
import zlib


def npy(version, descr, shape, payload, fortran=False):
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }" % (
        descr, "True" if fortran else "False", "".join("%d, " % d for d in shape) if len(shape) != 1 else "%d," % shape[0])
    size_field = 2 if version == 1 else 4
    pad = (-(10 + size_field - 2 + len(header) + 1)) % 64
    header = header + " " * pad + "\n"
    length = struct.pack("<H", len(header)) if version == 1 else struct.pack("<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + length + header.encode("latin1") + payload


def npy_seeds():
    out = {}
    for version in (1, 2, 3):
        out[f"f4_v{version}.npy"] = npy(version, "<f4", (1, 3, 2, 2), struct.pack("<12f", *range(12)))
    out["f2.npy"] = npy(1, "<f2", (2, 3), struct.pack("<6e", *[0.5, -1, 2, 65504, 0, 1e-4]))
    out["f8.npy"] = npy(1, "<f8", (4,), struct.pack("<4d", 1, -2, 3.5, 1e300))
    out["scalar.npy"] = npy(1, "<f4", (), struct.pack("<f", 7))
    out["empty.npy"] = npy(1, "<f4", (0, 3), b"")
    out["int.npy"] = npy(1, "<i8", (2,), struct.pack("<2q", 1, 2))
    out["fortran.npy"] = npy(1, "<f4", (2, 2), struct.pack("<4f", 1, 2, 3, 4), fortran=True)
    out["truncated.npy"] = npy(1, "<f4", (4, 4), struct.pack("<3f", 1, 2, 3))
    return out


def safetensors(entries, metadata=None):
    header, data = {}, b""
    for name, dtype, shape, payload in entries:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def safetensors_seeds():
    f32 = struct.pack("<6f", 1, 2, 3, 4, 5, 6)
    return {
        "f32.safetensors": safetensors([("conv.weight", "F32", (2, 3), f32), ("conv.bias", "F32", (2,), f32[:8])], {"format": "pt"}),
        "f16.safetensors": safetensors([("w", "F16", (3,), struct.pack("<3e", 1, -2, 0.25))]),
        "bf16.safetensors": safetensors([("w", "BF16", (2,), b"\x80\x3f\x00\x40")]),
        "ints.safetensors": safetensors([("bn.num_batches_tracked", "I64", (), struct.pack("<q", 5)), ("m", "U8", (2,), b"\x01\x02")]),
        "scalar.safetensors": safetensors([("s", "F32", (), struct.pack("<f", 3))]),
        "bad_offsets.safetensors": struct.pack("<Q", 60) + b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,12]}}    ' + b"\0" * 8,
    }


def png(width, height, color_type, channels, filters):
    raw = b""
    for y in range(height):
        raw += bytes([filters[y % len(filters)]]) + bytes((x * 37 + y * 11 + c * 5) % 256 for x in range(width) for c in range(channels))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def png_seeds():
    return {
        "gray.png": png(5, 4, 0, 1, [0, 1, 2, 3, 4]),
        "gray_alpha.png": png(3, 3, 4, 2, [4, 3, 2]),
        "rgb.png": png(4, 5, 2, 3, [1, 2, 3, 4, 0]),
        "rgba.png": png(2, 2, 6, 4, [3, 4]),
        "wide.png": png(64, 1, 2, 3, [4]),
    }


def main():
    target, directory = sys.argv[1], sys.argv[2]
    seeds = {"npy": npy_seeds, "safetensors": safetensors_seeds, "png": png_seeds}[target]()
    os.makedirs(directory, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
