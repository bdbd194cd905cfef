#!/usr/bin/env python3
"""The independent correctness oracle for unetc.

For a graph file it
  1. reads the lowered IR (`unetc ir GRAPH.json`),
  2. makes seeded random weights (PyTorch-like init, see init_weight) and seeded inputs, and
     writes them as .safetensors / .npy,
  3. evaluates a pure-numpy float64 reference of the IR (one function per operator), which
     also checks every node's IR shape against PyTorch's and, unless --no-calibrate, sets each
     batch_norm's running statistics from its actual input (see calibrate_batch_norm),
  4. builds an ONNX model (opset 17) of the IR (one function per operator) that computes
     graphs/README.md's semantics and runs it with onnxruntime (ORT_ENABLE_ALL),
  5. runs `unetc run GRAPH.json --weights W --input NAME=FILE.npy ... --output DIR --threads N`
     and compares every output with onnxruntime: max abs error and relative L2 error
     ||unetc - ort|| / ||ort||. An output passes when rel L2 <= 1e-4 (--tolerance) and unetc's
     output has no NaN/Inf. ORT must also agree with numpy to the same tolerance, or the output
     fails as an oracle error.

Prints one line per output and a final `N passed, M failed`; exits 1 on any failure.
Per output: unetc~ORT (max abs, rel L2: the pass criterion), unetc~numpy and ORT~numpy (rel L2
against the float64 reference: each float32 implementation's own rounding error).

Usage (Tools/setup-venv.sh makes the venv):
  Tools/.venv/bin/python Tools/oracle.py GRAPH.json [GRAPH.json ...] [--seed S] [--threads N]
      [--workdir DIR] [--unetc PATH] [--keep] [--oracle-only] [--per-node] [--tolerance T]
  Tools/.venv/bin/python Tools/oracle.py --all   (graphs/*.json, graphs/bench/*.json, graphs/test/*.json)

  --unetc PATH    the binary (default .build/debug/unetc, or $UNETC)
  --oracle-only   skip `unetc run`; only check the ONNX export against the numpy reference
  --plan          compile each graph with its weights to a plan (`unetc compile`) and run the plan
  --per-node      also compare every intermediate value ORT vs numpy (debugging the oracle)
  --keep          keep the work directory (weights, inputs, outputs, model.onnx) and print it
  --no-calibrate  keep the random batch-norm statistics (running_mean ~ 0.1 N(0,1), var U(0.5, 1.5))

Only numpy, onnx and onnxruntime are used (no torch).
"""
import argparse
import glob
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np

try:
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
except ImportError:
    sys.stderr.write("oracle: onnx/onnxruntime missing; run Tools/setup-venv.sh and use Tools/.venv/bin/python\n")
    sys.exit(2)

TOOLS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TOOLS)
DEFAULT_UNETC = os.path.join(ROOT, ".build", "debug", "unetc")
TOLERANCE = 1e-4  # default relative L2 bar, unetc vs ORT and ORT vs numpy (--tolerance)
OPSET = 17


class OracleError(Exception):
    pass


# ----------------------------------------------------------------------------------------------
# IR
# ----------------------------------------------------------------------------------------------

def wait_for_binary(path, seconds=120):
    """The developer rebuilds unetc while we run: wait a little if the binary is briefly missing."""
    deadline = time.time() + seconds
    while not os.access(path, os.X_OK):
        if time.time() > deadline:
            raise OracleError(f"unetc binary not found at {path}")
        time.sleep(2)


def load_ir(unetc, graph_path):
    wait_for_binary(unetc)
    p = subprocess.run([unetc, "ir", graph_path], capture_output=True, text=True)
    if p.returncode != 0:
        raise OracleError(f"`unetc ir` failed (exit {p.returncode}):\n{p.stderr.strip()}")
    ir = json.loads(p.stdout)
    if ir.get("format") != "unetc-ir" or ir.get("version") != 1:
        raise OracleError(f"unexpected IR format {ir.get('format')!r} version {ir.get('version')!r}")
    shapes = {i["name"]: i["shape"] for i in ir["inputs"]}
    for n in ir["nodes"]:
        n["in_shapes"] = [shapes[v] for v in n["inputs"]]
        shapes[n["name"]] = n["shape"]
    return ir


# ----------------------------------------------------------------------------------------------
# Random weights and inputs
# ----------------------------------------------------------------------------------------------

def rng_for(seed, name):
    """A generator per tensor name, so a tensor's values do not depend on the others."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def init_weight(node, w, all_weights, rng):
    """PyTorch-like initial values for one weight of a node.

    conv / linear / projection weights: U(-b, b), b = 1/sqrt(fan_in) (kaiming_uniform(a=sqrt(5)),
    fan_in = size(1) * receptive field, as torch computes it, also for conv_transpose);
    their biases: the same bound. Norm weights near 1, biases near 0; batch-norm running_mean small,
    running_var in [0.5, 1.5]; num_batches_tracked an int64 scalar.
    """
    local, shape = w["local"], tuple(w["shape"])
    if w["dtype"] == "I64":
        return np.array(rng.integers(0, 10000), dtype=np.int64).reshape(shape)
    leaf = local.rsplit(".", 1)[-1]
    if len(shape) >= 2:  # conv, conv-transpose, linear, geglu proj, attention projections
        fan_in = int(np.prod(shape[1:]))
        b = 1.0 / math.sqrt(fan_in)
        return rng.uniform(-b, b, shape).astype(np.float32)
    if node["op"] in ("batch_norm", "group_norm", "layer_norm", "instance_norm"):
        if leaf == "weight":
            return rng.uniform(0.8, 1.2, shape).astype(np.float32)
        if leaf == "running_var":
            return rng.uniform(0.5, 1.5, shape).astype(np.float32)
        return (0.1 * rng.standard_normal(shape)).astype(np.float32)  # bias, running_mean
    if leaf == "bias":  # bias of a conv / linear / projection: the bound of its weight
        sibling = local[: -len("bias")] + "weight"
        wshape = all_weights.get(sibling)
        fan_in = int(np.prod(wshape[1:])) if wshape is not None and len(wshape) >= 2 else max(1, shape[0])
        b = 1.0 / math.sqrt(fan_in)
        return rng.uniform(-b, b, shape).astype(np.float32)
    return (0.1 * rng.standard_normal(shape)).astype(np.float32)


def make_weights(ir, seed):
    """state_dict name -> array, for every weight the IR lists (optional ones included)."""
    out = {}
    for n in ir["nodes"]:
        shapes = {w["local"]: w["shape"] for w in n["weights"]}
        for w in n["weights"]:
            arr = init_weight(n, w, shapes, rng_for(seed, w["name"]))
            if w["name"] in out:  # a shared (tied) weight: the same tensor again
                if list(out[w["name"]].shape) != list(w["shape"]):
                    raise OracleError(f"weight {w['name']} listed with shapes {list(out[w['name']].shape)} and {w['shape']}")
                continue
            out[w["name"]] = arr
    return out


def make_inputs(ir, seed):
    """Inputs by role: timestep U(10, 999), mask 0/1, everything else standard normal."""
    out = {}
    for i in ir["inputs"]:
        rng = rng_for(seed, "input:" + i["name"])
        shape = tuple(i["shape"])
        role = i.get("role")
        if role == "timestep":
            a = rng.uniform(10.0, 999.0, shape)
        elif role == "mask":
            a = rng.integers(0, 2, shape)
        else:
            a = rng.standard_normal(shape)
        out[i["name"]] = np.ascontiguousarray(a, dtype=np.float32)
    return out


# ----------------------------------------------------------------------------------------------
# safetensors (written by hand: 8-byte LE header length, JSON header, raw LE data)
# ----------------------------------------------------------------------------------------------

SAFETENSORS_DTYPES = {np.dtype("float32"): ("F32", "<f4"), np.dtype("int64"): ("I64", "<i8")}


def write_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        code, le = SAFETENSORS_DTYPES[arr.dtype]
        data = np.ascontiguousarray(arr, dtype=le).tobytes()
        header[name] = {"dtype": code, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # align the data to 8 bytes, as the reference writer does
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """Reader for the self-check of the writer."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    codes = {"F32": "<f4", "I64": "<i8"}
    out = {}
    for name, h in header.items():
        b, e = h["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + b:8 + n + e], dtype=codes[h["dtype"]]).reshape(h["shape"])
    return out


# ----------------------------------------------------------------------------------------------
# Shared helpers (shape arithmetic PyTorch defines)
# ----------------------------------------------------------------------------------------------

def pool_output_size(size, k, s, p, ceil_mode):
    """torch's pooling_output_shape: with ceil_mode the last window must start inside the input
    or its left padding."""
    o = (size + 2 * p - k + ((s - 1) if ceil_mode else 0)) // s + 1
    if ceil_mode and (o - 1) * s >= size + p:
        o -= 1
    return o


def avg_pool_divisor(size, out, k, s, p):
    """Per output position, the window size torch's avg_pool2d divides by (count_include_pad=True):
    the window clipped to the padded input, so ceil_mode windows past the padding count less."""
    start = np.arange(out) * s - p
    end = np.minimum(start + k, size + p)
    return (end - start).astype(np.float64)


def crop_offset(n):
    a = n["attrs"]
    h, w = a["size"]
    if a.get("offset") is not None:
        return a["offset"][0], a["offset"][1]
    H, W = n["in_shapes"][0][2], n["in_shapes"][0][3]
    return (H - h) // 2, (W - w) // 2


def timestep_freqs(n):
    """diffusers get_timestep_embedding's frequencies, in float32 as torch computes them."""
    a = n["attrs"]
    half = a["dim"] // 2
    exponent = np.float32(-math.log(a["max_period"])) * np.arange(half, dtype=np.float32)
    exponent = exponent / np.float32(half - a["freq_shift"])
    return np.exp(exponent).astype(np.float32)


def attention_dims(n):
    x = n["in_shapes"][0]
    channels = x[2] if len(x) == 3 else x[1]
    heads = n["attrs"]["heads"]
    head_dim = n["attrs"].get("head_dim") or channels // heads
    return heads, head_dim


LAB_WHITE = (0.95047, 1.0, 1.08883)
XYZ_TO_RGB = np.array([[3.2404542, -1.5371385, -0.4985314],
                       [-0.9692660, 1.8760108, 0.0415560],
                       [0.0556434, -0.2040259, 1.0572252]])
LAB_DELTA = 6.0 / 29.0


# ----------------------------------------------------------------------------------------------
# numpy reference (float64). Each function: (node, operand arrays, {local weight name: array}).
# ----------------------------------------------------------------------------------------------

NUMPY_OPS = {}


def numpy_op(name):
    def register(f):
        NUMPY_OPS[name] = f
        return f
    return register


def _np_linear(x, w, b=None):
    y = x @ w.T
    return y + b if b is not None else y


_erf = np.frompyfunc(math.erf, 1, 1)


def _np_gelu_erf(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))


@numpy_op("conv2d")
def np_conv2d(n, xs, w):
    x, a = xs[0], n["attrs"]
    N, C, H, W = x.shape
    O, G = a["out"], a["groups"]
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = a["kernel"], a["stride"], a["pad"], a["dilation"]
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))).reshape(N, G, C // G, H + 2 * ph, W + 2 * pw)
    wg = w["weight"].reshape(G, O // G, C // G, kh, kw)
    out = np.zeros((N, G, O // G, Ho * Wo))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, :, i * dh:i * dh + sh * (Ho - 1) + 1:sh, j * dw:j * dw + sw * (Wo - 1) + 1:sw]
            patch = patch.reshape(N, G, C // G, Ho * Wo)
            if C // G == 1:  # depthwise: a broadcast multiply, not G tiny matmuls
                out += wg[None, :, :, 0, i, j, None] * patch
            else:
                out += np.matmul(wg[:, :, :, i, j], patch)
    out = out.reshape(N, O, Ho, Wo)
    return out + w["bias"][:, None, None] if a["bias"] else out


@numpy_op("conv_transpose2d")
def np_conv_transpose2d(n, xs, w):
    x, a = xs[0], n["attrs"]
    N, C, H, W = x.shape
    O, G = a["out"], a["groups"]
    (kh, kw), (sh, sw), (ph, pw) = a["kernel"], a["stride"], a["pad"]
    (oph, opw), (dh, dw) = a["output_padding"], a["dilation"]
    Ho = (H - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    Wo = (W - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    full = np.zeros((N, G, O // G, Ho + 2 * ph, Wo + 2 * pw))  # the output before `pad` is cut off
    xg = x.reshape(N, G, C // G, H * W)
    wg = w["weight"].reshape(G, C // G, O // G, kh, kw)
    for i in range(kh):
        for j in range(kw):
            contrib = np.matmul(wg[:, :, :, i, j].transpose(0, 2, 1), xg).reshape(N, G, O // G, H, W)
            full[:, :, :, i * dh:i * dh + sh * (H - 1) + 1:sh, j * dw:j * dw + sw * (W - 1) + 1:sw] += contrib
    out = full[:, :, :, ph:ph + Ho, pw:pw + Wo].reshape(N, O, Ho, Wo)
    return out + w["bias"][:, None, None] if a["bias"] else out


@numpy_op("linear")
def np_linear(n, xs, w):
    return _np_linear(xs[0], w["weight"], w.get("bias"))


@numpy_op("matmul")
def np_matmul(n, xs, w):
    a, b = xs
    return np.matmul(a, np.swapaxes(b, -1, -2) if n["attrs"]["transpose_b"] else b)


def _channel(v, rank):
    """A per-channel vector shaped to broadcast over axis 1 of a rank-`rank` tensor."""
    return v.reshape((1, -1) + (1,) * (rank - 2))


@numpy_op("batch_norm")
def np_batch_norm(n, xs, w):
    x, r = xs[0], xs[0].ndim
    y = (x - _channel(w["running_mean"], r)) / np.sqrt(_channel(w["running_var"], r) + n["attrs"]["eps"])
    return y * _channel(w["weight"], r) + _channel(w["bias"], r)


@numpy_op("group_norm")
def np_group_norm(n, xs, w):
    x, a = xs[0], n["attrs"]
    g = x.reshape(x.shape[0], a["groups"], -1)
    mean = g.mean(axis=2, keepdims=True)
    var = ((g - mean) ** 2).mean(axis=2, keepdims=True)  # biased
    y = ((g - mean) / np.sqrt(var + a["eps"])).reshape(x.shape)
    return y * _channel(w["weight"], x.ndim) + _channel(w["bias"], x.ndim) if a["affine"] else y


@numpy_op("layer_norm")
def np_layer_norm(n, xs, w):
    x, a = xs[0], n["attrs"]
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    y = (x - mean) / np.sqrt(var + a["eps"])
    return y * w["weight"] + w["bias"] if a["affine"] else y


@numpy_op("instance_norm")
def np_instance_norm(n, xs, w):
    x, a = xs[0], n["attrs"]
    axes = tuple(range(2, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)  # biased
    y = (x - mean) / np.sqrt(var + a["eps"])
    return y * _channel(w["weight"], x.ndim) + _channel(w["bias"], x.ndim) if a["affine"] else y


@numpy_op("relu")
def np_relu(n, xs, w):
    return np.maximum(xs[0], 0.0)


@numpy_op("relu6")
def np_relu6(n, xs, w):
    return np.minimum(np.maximum(xs[0], 0.0), 6.0)


@numpy_op("leaky_relu")
def np_leaky_relu(n, xs, w):
    x = xs[0]
    return np.where(x >= 0, x, x * n["attrs"]["slope"])


@numpy_op("silu")
def np_silu(n, xs, w):
    return xs[0] / (1.0 + np.exp(-xs[0]))


@numpy_op("gelu")
def np_gelu(n, xs, w):
    x = xs[0]
    if n["attrs"]["approximate"] == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    return _np_gelu_erf(x)


@numpy_op("sigmoid")
def np_sigmoid(n, xs, w):
    return 1.0 / (1.0 + np.exp(-xs[0]))


@numpy_op("tanh")
def np_tanh(n, xs, w):
    return np.tanh(xs[0])


@numpy_op("identity")
def np_identity(n, xs, w):
    return xs[0]


@numpy_op("softmax")
def np_softmax(n, xs, w):
    x, axis = xs[0], n["attrs"]["axis"]
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@numpy_op("clamp")
def np_clamp(n, xs, w):
    x, a = xs[0], n["attrs"]
    if a.get("min") is not None:
        x = np.maximum(x, a["min"])
    if a.get("max") is not None:
        x = np.minimum(x, a["max"])
    return x


@numpy_op("scale")
def np_scale(n, xs, w):
    return xs[0] * n["attrs"]["factor"] + n["attrs"]["offset"]


@numpy_op("add")
def np_add(n, xs, w):
    return xs[0] + xs[1]


@numpy_op("sub")
def np_sub(n, xs, w):
    return xs[0] - xs[1]


@numpy_op("mul")
def np_mul(n, xs, w):
    return xs[0] * xs[1]


@numpy_op("div")
def np_div(n, xs, w):
    return xs[0] / xs[1]


@numpy_op("film")
def np_film(n, xs, w):
    x, e = xs
    C = x.shape[1]
    scale = e[:, :C].reshape(e.shape[0], C, *([1] * (x.ndim - 2)))
    shift = e[:, C:].reshape(e.shape[0], C, *([1] * (x.ndim - 2)))
    return x * (1.0 + scale) + shift


@numpy_op("concat")
def np_concat(n, xs, w):
    return np.concatenate(xs, axis=n["attrs"]["axis"])


@numpy_op("slice")
def np_slice(n, xs, w):
    a = n["attrs"]
    idx = [slice(None)] * xs[0].ndim
    idx[a["axis"]] = slice(a["start"], a["start"] + a["length"])
    return xs[0][tuple(idx)]


@numpy_op("reshape")
def np_reshape(n, xs, w):
    x = xs[0]
    shape = [x.shape[i] if d == 0 else d for i, d in enumerate(n["attrs"]["shape"])]  # 0 copies
    return x.reshape(shape)  # numpy infers the one -1


@numpy_op("transpose")
def np_transpose(n, xs, w):
    return xs[0].transpose(n["attrs"]["perm"])


def _np_pool_windows(x, a, fill):
    """Padded input and output size for a 2-D pool; the padding covers every (ceil_mode) window."""
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw) = a["kernel"], a["stride"], a["pad"]
    Ho = pool_output_size(H, kh, sh, ph, a["ceil_mode"])
    Wo = pool_output_size(W, kw, sw, pw, a["ceil_mode"])
    pb = max(ph, (Ho - 1) * sh + kh - H - ph)
    pr = max(pw, (Wo - 1) * sw + kw - W - pw)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, pb), (pw, pr)), constant_values=fill)
    windows = [xp[:, :, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw] for i in range(kh) for j in range(kw)]
    return windows, Ho, Wo


@numpy_op("max_pool2d")
def np_max_pool2d(n, xs, w):
    windows, _, _ = _np_pool_windows(xs[0], n["attrs"], -np.inf)
    return np.maximum.reduce(windows)


@numpy_op("avg_pool2d")
def np_avg_pool2d(n, xs, w):
    a = n["attrs"]
    windows, Ho, Wo = _np_pool_windows(xs[0], a, 0.0)
    H, W = xs[0].shape[2:]
    dh = avg_pool_divisor(H, Ho, a["kernel"][0], a["stride"][0], a["pad"][0])
    dw = avg_pool_divisor(W, Wo, a["kernel"][1], a["stride"][1], a["pad"][1])
    return np.add.reduce(windows) / (dh[:, None] * dw[None, :])


@numpy_op("global_avg_pool")
def np_global_avg_pool(n, xs, w):
    return xs[0].mean(axis=(2, 3), keepdims=True)


@numpy_op("global_max_pool")
def np_global_max_pool(n, xs, w):
    return xs[0].max(axis=(2, 3), keepdims=True)


def _np_linear_coords(size_in, size_out, align_corners):
    """Source indices i0, i1 and weight of i1 along one axis, as torch's bilinear computes them."""
    dst = np.arange(size_out, dtype=np.float64)
    if align_corners:
        src = dst * ((size_in - 1) / (size_out - 1)) if size_out > 1 else np.zeros(size_out)
    else:
        src = np.maximum((dst + 0.5) * (size_in / size_out) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), size_in - 1)
    i1 = np.minimum(i0 + 1, size_in - 1)
    return i0, i1, src - i0


@numpy_op("upsample")
def np_upsample(n, xs, w):
    x, a = xs[0], n["attrs"]
    H, W = x.shape[2:]
    Ho, Wo = n["shape"][2], n["shape"][3]
    if a["mode"] == "nearest":  # src = floor(dst * in / out), in exact integer arithmetic
        return x[:, :, (np.arange(Ho) * H) // Ho][:, :, :, (np.arange(Wo) * W) // Wo]
    h0, h1, lh = _np_linear_coords(H, Ho, a["align_corners"])
    w0, w1, lw = _np_linear_coords(W, Wo, a["align_corners"])
    x = x[:, :, h0] * (1 - lh)[:, None] + x[:, :, h1] * lh[:, None]
    return x[:, :, :, w0] * (1 - lw) + x[:, :, :, w1] * lw


@numpy_op("pixel_shuffle")
def np_pixel_shuffle(n, xs, w):
    x, r = xs[0], n["attrs"]["factor"]
    N, C, H, W = x.shape
    return x.reshape(N, C // (r * r), r, r, H, W).transpose(0, 1, 4, 2, 5, 3).reshape(N, C // (r * r), H * r, W * r)


@numpy_op("channel_shuffle")
def np_channel_shuffle(n, xs, w):
    x, g = xs[0], n["attrs"]["groups"]
    return x.reshape(x.shape[0], g, x.shape[1] // g, *x.shape[2:]).swapaxes(1, 2).reshape(x.shape)


@numpy_op("pad")
def np_pad(n, xs, w):
    a = n["attrs"]
    l, r, t, b = a["pads"]
    widths = ((0, 0), (0, 0), (t, b), (l, r))
    if a["mode"] == "zero":
        return np.pad(xs[0], widths, mode="constant", constant_values=a["value"])
    return np.pad(xs[0], widths, mode={"reflect": "reflect", "replicate": "edge"}[a["mode"]])


@numpy_op("crop")
def np_crop(n, xs, w):
    h, wd = n["attrs"]["size"]
    top, left = crop_offset(n)
    return xs[0][:, :, top:top + h, left:left + wd]


@numpy_op("timestep_embedding")
def np_timestep_embedding(n, xs, w):
    t = xs[0].astype(np.float32).reshape(-1, 1)
    args = (t * timestep_freqs(n)[None, :]).astype(np.float64)  # float32 product, as torch
    emb = np.concatenate([np.sin(args), np.cos(args)], axis=1)
    if n["attrs"]["flip_sin_to_cos"]:
        half = emb.shape[1] // 2
        emb = np.concatenate([emb[:, half:], emb[:, :half]], axis=1)
    return emb


@numpy_op("attention")
def np_attention(n, xs, w):
    x = xs[0]
    if x.ndim == 4:
        B, C, H, W = x.shape
        tokens = x.reshape(B, C, H * W).transpose(0, 2, 1)
    else:
        tokens = x
    context = xs[1] if len(xs) > 1 else tokens
    heads, d = attention_dims(n)
    B, N, M = tokens.shape[0], tokens.shape[1], context.shape[1]
    q = _np_linear(tokens, w["to_q.weight"], w.get("to_q.bias")).reshape(B, N, heads, d).transpose(0, 2, 1, 3)
    k = _np_linear(context, w["to_k.weight"], w.get("to_k.bias")).reshape(B, M, heads, d).transpose(0, 2, 1, 3)
    v = _np_linear(context, w["to_v.weight"], w.get("to_v.bias")).reshape(B, M, heads, d).transpose(0, 2, 1, 3)
    s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d)
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    o = (p @ v).transpose(0, 2, 1, 3).reshape(B, N, heads * d)
    o = _np_linear(o, w["to_out.0.weight"], w.get("to_out.0.bias"))
    if x.ndim == 4:
        return o.transpose(0, 2, 1).reshape(x.shape)
    return o


@numpy_op("geglu")
def np_geglu(n, xs, w):
    h = _np_linear(xs[0], w["proj.weight"], w["proj.bias"])
    out = n["attrs"]["out"]
    return h[..., :out] * _np_gelu_erf(h[..., out:])


@numpy_op("lab_to_rgb")
def np_lab_to_rgb(n, xs, w):
    x = xs[0]
    L, a, b = x[:, 0], x[:, 1], x[:, 2]
    fy = (L + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = fy - b / 200.0

    def finv(t):
        return np.where(t > LAB_DELTA, t ** 3, 3.0 * LAB_DELTA ** 2 * (t - 4.0 / 29.0))

    xyz = np.stack([LAB_WHITE[0] * finv(fx), LAB_WHITE[1] * finv(fy), LAB_WHITE[2] * finv(fz)], axis=1)
    rgb = np.clip(np.einsum("rc,nchw->nrhw", XYZ_TO_RGB, xyz), 0.0, 1.0)
    return np.where(rgb <= 0.0031308, 12.92 * rgb, 1.055 * rgb ** (1.0 / 2.4) - 0.055)


@numpy_op("to_tokens")
def np_to_tokens(n, xs, w):
    B, C, H, W = xs[0].shape
    return xs[0].reshape(B, C, H * W).transpose(0, 2, 1)


@numpy_op("from_tokens")
def np_from_tokens(n, xs, w):
    x, like = xs
    B, N, C = x.shape
    return x.transpose(0, 2, 1).reshape(B, C, like.shape[2], like.shape[3])


def calibrate_batch_norm(n, x, weights, seed):
    """Sets a batch_norm's running statistics from the statistics of its actual input `x`, the way a
    trained network's match its data: running_mean = mean + 0.1 std N(0, 1), running_var = var U(0.5, 1.5).

    With fixed random statistics (mean ~ 0, var ~ 1) and PyTorch's default init (each conv scales
    the variance by about 1/3) the signal decays through a deep net until the biases alone decide
    the output; the output then barely depends on the input and a rel-L2 comparison sees little.
    """
    rng = rng_for(seed, n["name"] + ":calibrate")
    axes = (0,) + tuple(range(2, x.ndim))
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    names = {w["local"]: w["name"] for w in n["weights"]}
    weights[names["running_mean"]] = (mean + 0.1 * np.sqrt(var) * rng.standard_normal(mean.shape)).astype(np.float32)
    weights[names["running_var"]] = (var * rng.uniform(0.5, 1.5, var.shape) + 1e-6).astype(np.float32)


def run_numpy(ir, weights, inputs, keep_all=False, calibrate_seed=None):
    """Evaluates the IR in float64. Checks every node's shape against the IR's.
    With calibrate_seed, first sets each batch_norm's running statistics in `weights` (float32,
    updated in place) from its input (calibrate_batch_norm)."""
    values = {k: v.astype(np.float64) for k, v in inputs.items()}
    weights64 = {k: v.astype(np.float64) for k, v in weights.items()}
    last_use = {}
    for idx, n in enumerate(ir["nodes"]):
        for v in n["inputs"]:
            last_use[v] = idx
    keep = {o["value"] for o in ir["outputs"]}
    for idx, n in enumerate(ir["nodes"]):
        f = NUMPY_OPS.get(n["op"])
        if f is None:
            raise OracleError(f"numpy reference: unknown op {n['op']!r} (node {n['name']})")
        if calibrate_seed is not None and n["op"] == "batch_norm":
            calibrate_batch_norm(n, values[n["inputs"][0]], weights, calibrate_seed)
            for wt in n["weights"]:
                weights64[wt["name"]] = weights[wt["name"]].astype(np.float64)
        w = {wt["local"]: weights64[wt["name"]] for wt in n["weights"]}
        y = np.asarray(f(n, [values[v] for v in n["inputs"]], w), dtype=np.float64)
        if list(y.shape) != list(n["shape"]):
            raise OracleError(f"node {n['name']} ({n['op']}): the IR says shape {n['shape']}, "
                              f"PyTorch semantics give {list(y.shape)}")
        values[n["name"]] = y
        if not keep_all:  # free what nobody reads any more
            for v in n["inputs"]:
                if last_use.get(v) == idx and v not in keep:
                    values.pop(v, None)
    return values


# ----------------------------------------------------------------------------------------------
# ONNX export. Each function: (builder, node, operand tensor names, {local weight: initializer name})
# and returns the name of the node's result.
# ----------------------------------------------------------------------------------------------

class OnnxBuilder:
    def __init__(self):
        self.nodes, self.initializers, self.count = [], [], 0
        self.prefix = ""

    def fresh(self, hint):
        self.count += 1
        return f"{self.prefix}/{hint}#{self.count}"

    def const(self, value, dtype=np.float32, hint="const"):
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def ints(self, values):
        return self.const(list(values), np.int64, "ints")

    def scalar(self, v):
        return self.const(v, np.float32, "scalar")

    def op(self, op_type, inputs, **attrs):
        out = self.fresh(op_type)
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out


ONNX_OPS = {}


def onnx_op(name):
    def register(f):
        ONNX_OPS[name] = f
        return f
    return register


def _ox_linear(g, x, weight, bias=None):
    y = g.op("MatMul", [x, g.op("Transpose", [weight], perm=[1, 0])])
    return g.op("Add", [y, bias]) if bias else y


def _ox_gelu_erf(g, x):
    e = g.op("Erf", [g.op("Div", [x, g.scalar(math.sqrt(2.0))])])
    return g.op("Mul", [g.op("Mul", [x, g.scalar(0.5)]), g.op("Add", [e, g.scalar(1.0)])])


def _ox_channel(g, v, rank):
    return g.op("Reshape", [v, g.ints([-1] + [1] * (rank - 2))])


@onnx_op("conv2d")
def ox_conv2d(g, n, xs, w):
    a = n["attrs"]
    inputs = [xs[0], w["weight"]] + ([w["bias"]] if a["bias"] else [])
    return g.op("Conv", inputs, kernel_shape=a["kernel"], strides=a["stride"], dilations=a["dilation"],
                pads=a["pad"] + a["pad"], group=a["groups"])


@onnx_op("conv_transpose2d")
def ox_conv_transpose2d(g, n, xs, w):
    a = n["attrs"]
    inputs = [xs[0], w["weight"]] + ([w["bias"]] if a["bias"] else [])
    return g.op("ConvTranspose", inputs, kernel_shape=a["kernel"], strides=a["stride"], dilations=a["dilation"],
                pads=a["pad"] + a["pad"], output_padding=a["output_padding"], group=a["groups"])


@onnx_op("linear")
def ox_linear(g, n, xs, w):
    return _ox_linear(g, xs[0], w["weight"], w.get("bias"))


@onnx_op("matmul")
def ox_matmul(g, n, xs, w):
    a, b = xs
    if n["attrs"]["transpose_b"]:
        r = len(n["in_shapes"][1])
        b = g.op("Transpose", [b], perm=list(range(r - 2)) + [r - 1, r - 2])
    return g.op("MatMul", [a, b])


@onnx_op("batch_norm")
def ox_batch_norm(g, n, xs, w):
    return g.op("BatchNormalization", [xs[0], w["weight"], w["bias"], w["running_mean"], w["running_var"]],
                epsilon=n["attrs"]["eps"])


@onnx_op("group_norm")
def ox_group_norm(g, n, xs, w):
    # Written out: opset 18's GroupNormalization has per-group scale (changed in opset 21).
    a, shape = n["attrs"], n["in_shapes"][0]
    r = g.op("Reshape", [xs[0], g.ints([shape[0], a["groups"], -1])])
    d = g.op("Sub", [r, g.op("ReduceMean", [r], axes=[2], keepdims=1)])
    var = g.op("ReduceMean", [g.op("Mul", [d, d])], axes=[2], keepdims=1)
    y = g.op("Div", [d, g.op("Sqrt", [g.op("Add", [var, g.scalar(a["eps"])])])])
    y = g.op("Reshape", [y, g.ints(shape)])
    if a["affine"]:
        y = g.op("Add", [g.op("Mul", [y, _ox_channel(g, w["weight"], len(shape))]), _ox_channel(g, w["bias"], len(shape))])
    return y


@onnx_op("layer_norm")
def ox_layer_norm(g, n, xs, w):
    a, d = n["attrs"], n["in_shapes"][0][-1]
    scale = w["weight"] if a["affine"] else g.const(np.ones(d))
    bias = w["bias"] if a["affine"] else g.const(np.zeros(d))
    return g.op("LayerNormalization", [xs[0], scale, bias], axis=-1, epsilon=a["eps"])


@onnx_op("instance_norm")
def ox_instance_norm(g, n, xs, w):
    a, c = n["attrs"], n["in_shapes"][0][1]
    scale = w["weight"] if a["affine"] else g.const(np.ones(c))
    bias = w["bias"] if a["affine"] else g.const(np.zeros(c))
    return g.op("InstanceNormalization", [xs[0], scale, bias], epsilon=a["eps"])


@onnx_op("relu")
def ox_relu(g, n, xs, w):
    return g.op("Relu", xs)


@onnx_op("relu6")
def ox_relu6(g, n, xs, w):
    return g.op("Clip", [xs[0], g.scalar(0.0), g.scalar(6.0)])


@onnx_op("leaky_relu")
def ox_leaky_relu(g, n, xs, w):
    return g.op("LeakyRelu", xs, alpha=n["attrs"]["slope"])


@onnx_op("silu")
def ox_silu(g, n, xs, w):
    return g.op("Mul", [xs[0], g.op("Sigmoid", xs)])


@onnx_op("gelu")
def ox_gelu(g, n, xs, w):
    x = xs[0]
    if n["attrs"]["approximate"] != "tanh":
        return _ox_gelu_erf(g, x)
    cube = g.op("Mul", [g.op("Mul", [x, x]), x])
    inner = g.op("Mul", [g.op("Add", [x, g.op("Mul", [cube, g.scalar(0.044715)])]), g.scalar(math.sqrt(2.0 / math.pi))])
    return g.op("Mul", [g.op("Mul", [x, g.scalar(0.5)]), g.op("Add", [g.op("Tanh", [inner]), g.scalar(1.0)])])


@onnx_op("sigmoid")
def ox_sigmoid(g, n, xs, w):
    return g.op("Sigmoid", xs)


@onnx_op("tanh")
def ox_tanh(g, n, xs, w):
    return g.op("Tanh", xs)


@onnx_op("identity")
def ox_identity(g, n, xs, w):
    return g.op("Identity", xs)


@onnx_op("softmax")
def ox_softmax(g, n, xs, w):
    return g.op("Softmax", xs, axis=n["attrs"]["axis"])


@onnx_op("clamp")
def ox_clamp(g, n, xs, w):
    a = n["attrs"]
    lo = g.scalar(a["min"]) if a.get("min") is not None else ""
    hi = g.scalar(a["max"]) if a.get("max") is not None else ""
    return g.op("Clip", [xs[0], lo, hi])


@onnx_op("scale")
def ox_scale(g, n, xs, w):
    return g.op("Add", [g.op("Mul", [xs[0], g.scalar(n["attrs"]["factor"])]), g.scalar(n["attrs"]["offset"])])


@onnx_op("add")
def ox_add(g, n, xs, w):
    return g.op("Add", xs)


@onnx_op("sub")
def ox_sub(g, n, xs, w):
    return g.op("Sub", xs)


@onnx_op("mul")
def ox_mul(g, n, xs, w):
    return g.op("Mul", xs)


@onnx_op("div")
def ox_div(g, n, xs, w):
    return g.op("Div", xs)


@onnx_op("film")
def ox_film(g, n, xs, w):
    x, e = xs
    rank, C = len(n["in_shapes"][0]), n["in_shapes"][0][1]
    scale = g.op("Slice", [e, g.ints([0]), g.ints([C]), g.ints([1])])
    shift = g.op("Slice", [e, g.ints([C]), g.ints([2 * C]), g.ints([1])])
    if rank > 2:  # [B, C] -> [B, C, 1, 1, ...]
        scale = g.op("Unsqueeze", [scale, g.ints(range(2, rank))])
        shift = g.op("Unsqueeze", [shift, g.ints(range(2, rank))])
    return g.op("Add", [g.op("Mul", [x, g.op("Add", [scale, g.scalar(1.0)])]), shift])


@onnx_op("concat")
def ox_concat(g, n, xs, w):
    return g.op("Concat", xs, axis=n["attrs"]["axis"])


@onnx_op("slice")
def ox_slice(g, n, xs, w):
    a = n["attrs"]
    return g.op("Slice", [xs[0], g.ints([a["start"]]), g.ints([a["start"] + a["length"]]), g.ints([a["axis"]])])


@onnx_op("reshape")
def ox_reshape(g, n, xs, w):
    return g.op("Reshape", [xs[0], g.ints(n["attrs"]["shape"])])  # ONNX: 0 copies, -1 infers, like ours


@onnx_op("transpose")
def ox_transpose(g, n, xs, w):
    return g.op("Transpose", xs, perm=n["attrs"]["perm"])


def _ox_pool_pads(n):
    """Explicit [top, left, bottom, right] padding so a pad-free ONNX pool yields the IR's output
    size, and the torch window starts (ceil_mode windows included)."""
    a, (H, W), (Ho, Wo) = n["attrs"], n["in_shapes"][0][2:], n["shape"][2:]
    (kh, kw), (sh, sw), (ph, pw) = a["kernel"], a["stride"], a["pad"]
    return [ph, pw, max(ph, (Ho - 1) * sh + kh - H - ph), max(pw, (Wo - 1) * sw + kw - W - pw)]


@onnx_op("max_pool2d")
def ox_max_pool2d(g, n, xs, w):
    a = n["attrs"]
    t, l, b, r = _ox_pool_pads(n)
    x = xs[0]
    if t or l or b or r:
        x = g.op("Pad", [x, g.ints([0, 0, t, l, 0, 0, b, r]), g.scalar(-np.inf)], mode="constant")
    return g.op("MaxPool", [x], kernel_shape=a["kernel"], strides=a["stride"])


@onnx_op("avg_pool2d")
def ox_avg_pool2d(g, n, xs, w):
    a, (H, W), (Ho, Wo) = n["attrs"], n["in_shapes"][0][2:], n["shape"][2:]
    (kh, kw), (sh, sw), (ph, pw) = a["kernel"], a["stride"], a["pad"]
    t, l, b, r = _ox_pool_pads(n)
    x = xs[0]
    if t or l or b or r:
        x = g.op("Pad", [x, g.ints([0, 0, t, l, 0, 0, b, r]), g.scalar(0.0)], mode="constant")
    y = g.op("AveragePool", [x], kernel_shape=a["kernel"], strides=a["stride"])  # window sum / (kh*kw)
    divisor = avg_pool_divisor(H, Ho, kh, sh, ph)[:, None] * avg_pool_divisor(W, Wo, kw, sw, pw)[None, :]
    if np.any(divisor != kh * kw):  # torch divides ceil_mode windows past the padding by less
        y = g.op("Mul", [y, g.const((kh * kw / divisor)[None, None])])
    return y


@onnx_op("global_avg_pool")
def ox_global_avg_pool(g, n, xs, w):
    return g.op("GlobalAveragePool", xs)


@onnx_op("global_max_pool")
def ox_global_max_pool(g, n, xs, w):
    return g.op("GlobalMaxPool", xs)


@onnx_op("upsample")
def ox_upsample(g, n, xs, w):
    a = n["attrs"]
    sizes = g.ints(n["shape"])
    if a["mode"] == "nearest":  # torch 'nearest': src = floor(dst * in / out)
        return g.op("Resize", [xs[0], "", "", sizes], mode="nearest",
                    coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    # torch bilinear, align_corners=False: src = (dst + 0.5) * in/out - 0.5, clamped at 0, for
    # every output size: ONNX 'half_pixel' ('pytorch_half_pixel' maps a size-1 output to 0).
    mode = "align_corners" if a["align_corners"] else "half_pixel"
    return g.op("Resize", [xs[0], "", "", sizes], mode="linear", coordinate_transformation_mode=mode)


@onnx_op("pixel_shuffle")
def ox_pixel_shuffle(g, n, xs, w):
    return g.op("DepthToSpace", xs, blocksize=n["attrs"]["factor"], mode="CRD")


@onnx_op("channel_shuffle")
def ox_channel_shuffle(g, n, xs, w):
    shape, groups = n["in_shapes"][0], n["attrs"]["groups"]
    r = g.op("Reshape", [xs[0], g.ints([shape[0], groups, shape[1] // groups] + shape[2:])])
    t = g.op("Transpose", [r], perm=[0, 2, 1] + list(range(3, len(shape) + 1)))
    return g.op("Reshape", [t, g.ints(shape)])


@onnx_op("pad")
def ox_pad(g, n, xs, w):
    a = n["attrs"]
    l, r, t, b = a["pads"]
    mode = {"zero": "constant", "reflect": "reflect", "replicate": "edge"}[a["mode"]]
    inputs = [xs[0], g.ints([0, 0, t, l, 0, 0, b, r])]
    if mode == "constant":
        inputs.append(g.scalar(a["value"]))
    return g.op("Pad", inputs, mode=mode)


@onnx_op("crop")
def ox_crop(g, n, xs, w):
    h, wd = n["attrs"]["size"]
    top, left = crop_offset(n)
    return g.op("Slice", [xs[0], g.ints([top, left]), g.ints([top + h, left + wd]), g.ints([2, 3])])


@onnx_op("timestep_embedding")
def ox_timestep_embedding(g, n, xs, w):
    t = g.op("Reshape", [xs[0], g.ints([-1, 1])])
    args = g.op("Mul", [t, g.const(timestep_freqs(n)[None, :])])
    sin, cos = g.op("Sin", [args]), g.op("Cos", [args])
    return g.op("Concat", [cos, sin] if n["attrs"]["flip_sin_to_cos"] else [sin, cos], axis=1)


@onnx_op("attention")
def ox_attention(g, n, xs, w):
    shape = n["in_shapes"][0]
    heads, d = attention_dims(n)
    B = shape[0]
    if len(shape) == 4:
        tokens = g.op("Transpose", [g.op("Reshape", [xs[0], g.ints([B, shape[1], -1])])], perm=[0, 2, 1])
    else:
        tokens = xs[0]
    context = xs[1] if len(xs) > 1 else tokens

    def project(x, name, perm):
        y = _ox_linear(g, x, w[name + ".weight"], w.get(name + ".bias"))
        return g.op("Transpose", [g.op("Reshape", [y, g.ints([B, -1, heads, d])])], perm=perm)

    q = project(tokens, "to_q", [0, 2, 1, 3])    # [B, h, N, d]
    k = project(context, "to_k", [0, 2, 3, 1])   # [B, h, d, M]
    v = project(context, "to_v", [0, 2, 1, 3])   # [B, h, M, d]
    scores = g.op("Mul", [g.op("MatMul", [q, k]), g.scalar(1.0 / math.sqrt(d))])
    o = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
    o = g.op("Reshape", [g.op("Transpose", [o], perm=[0, 2, 1, 3]), g.ints([B, -1, heads * d])])
    o = _ox_linear(g, o, w["to_out.0.weight"], w.get("to_out.0.bias"))
    if len(shape) == 4:
        return g.op("Reshape", [g.op("Transpose", [o], perm=[0, 2, 1]), g.ints(shape)])
    return o


@onnx_op("geglu")
def ox_geglu(g, n, xs, w):
    out = n["attrs"]["out"]
    h = _ox_linear(g, xs[0], w["proj.weight"], w["proj.bias"])
    hidden = g.op("Slice", [h, g.ints([0]), g.ints([out]), g.ints([-1])])
    gate = g.op("Slice", [h, g.ints([out]), g.ints([2 * out]), g.ints([-1])])
    return g.op("Mul", [hidden, _ox_gelu_erf(g, gate)])


@onnx_op("lab_to_rgb")
def ox_lab_to_rgb(g, n, xs, w):
    x = xs[0]

    def channel(c):
        return g.op("Slice", [x, g.ints([c]), g.ints([c + 1]), g.ints([1])])

    def finv(t):
        cube = g.op("Mul", [g.op("Mul", [t, t]), t])
        lin = g.op("Mul", [g.op("Sub", [t, g.scalar(4.0 / 29.0)]), g.scalar(3.0 * LAB_DELTA ** 2)])
        return g.op("Where", [g.op("Greater", [t, g.scalar(LAB_DELTA)]), cube, lin])

    fy = g.op("Div", [g.op("Add", [channel(0), g.scalar(16.0)]), g.scalar(116.0)])
    fx = g.op("Add", [fy, g.op("Div", [channel(1), g.scalar(500.0)])])
    fz = g.op("Sub", [fy, g.op("Div", [channel(2), g.scalar(200.0)])])
    xyz = g.op("Concat", [g.op("Mul", [finv(f), g.scalar(white)]) for f, white in zip((fx, fy, fz), LAB_WHITE)], axis=1)
    rgb = g.op("Conv", [xyz, g.const(XYZ_TO_RGB.reshape(3, 3, 1, 1))], kernel_shape=[1, 1])
    rgb = g.op("Clip", [rgb, g.scalar(0.0), g.scalar(1.0)])
    curve = g.op("Sub", [g.op("Mul", [g.op("Pow", [rgb, g.scalar(1.0 / 2.4)]), g.scalar(1.055)]), g.scalar(0.055)])
    return g.op("Where", [g.op("LessOrEqual", [rgb, g.scalar(0.0031308)]), g.op("Mul", [rgb, g.scalar(12.92)]), curve])


@onnx_op("to_tokens")
def ox_to_tokens(g, n, xs, w):
    B, C = n["in_shapes"][0][:2]
    return g.op("Transpose", [g.op("Reshape", [xs[0], g.ints([B, C, -1])])], perm=[0, 2, 1])


@onnx_op("from_tokens")
def ox_from_tokens(g, n, xs, w):
    return g.op("Reshape", [g.op("Transpose", [xs[0]], perm=[0, 2, 1]), g.ints(n["shape"])])


def build_onnx(ir, weights, debug_values=False):
    """The ONNX model of the IR; graph outputs are named like the IR outputs (plus every
    intermediate value as `value:<name>` when debug_values)."""
    g = OnnxBuilder()
    for name, arr in weights.items():
        if arr.dtype == np.float32:  # num_batches_tracked is not needed
            g.initializers.append(numpy_helper.from_array(arr, name))
    tensor = {i["name"]: i["name"] for i in ir["inputs"]}
    for n in ir["nodes"]:
        f = ONNX_OPS.get(n["op"])
        if f is None:
            raise OracleError(f"ONNX export: unknown op {n['op']!r} (node {n['name']})")
        g.prefix = n["name"]
        w = {wt["local"]: wt["name"] for wt in n["weights"]}
        tensor[n["name"]] = f(g, n, [tensor[v] for v in n["inputs"]], w)
    g.prefix = "outputs"
    shape_of = {i["name"]: i["shape"] for i in ir["inputs"]}
    shape_of.update({n["name"]: n["shape"] for n in ir["nodes"]})
    outputs = []
    for o in ir["outputs"]:
        g.nodes.append(helper.make_node("Identity", [tensor[o["value"]]], [o["name"]], name="output:" + o["name"]))
        outputs.append(helper.make_tensor_value_info(o["name"], TensorProto.FLOAT, shape_of[o["value"]]))
    if debug_values:
        for n in ir["nodes"]:
            name = "value:" + n["name"]
            g.nodes.append(helper.make_node("Identity", [tensor[n["name"]]], [name], name=name))
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, n["shape"]))
    inputs = [helper.make_tensor_value_info(i["name"], TensorProto.FLOAT, i["shape"]) for i in ir["inputs"]]
    graph = helper.make_graph(g.nodes, ir["name"], inputs, outputs, initializer=g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="unetc-oracle")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def run_ort(model, inputs, threads):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, inputs)))


# ----------------------------------------------------------------------------------------------
# unetc run and comparison
# ----------------------------------------------------------------------------------------------

def run_unetc(unetc, graph, weights_path, input_paths, out_dir, threads, timeout, plan=False):
    """Returns (outputs by name or None, message, seconds). With `plan`, the graph and weights are
    first compiled to a plan file (`unetc compile`) and the plan is run: the path users deploy,
    where filters are stored in their kernels' layouts."""
    wait_for_binary(unetc)
    cmd = [unetc, "run", graph, "--weights", weights_path]
    if plan:
        plan_path = os.path.join(out_dir, "model.unetc")
        compile_cmd = [unetc, "compile", graph, "--weights", weights_path, "-o", plan_path]
        try:
            p = subprocess.run(compile_cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, f"`unetc compile` timed out after {timeout} s", 0.0
        if p.returncode != 0:
            text = (p.stderr.strip() or p.stdout.strip()).splitlines()
            detail = "\n".join("      " + line for line in text[:12])
            return None, f"unetc compile FAILED (exit {p.returncode}); command: {' '.join(compile_cmd)}\n{detail}", 0.0
        cmd = [unetc, "run", plan_path]
    for name, path in input_paths.items():
        cmd += ["--input", f"{name}={path}"]
    cmd += ["--output", out_dir, "--threads", str(threads)]
    t0 = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"`unetc run` timed out after {timeout} s", time.time() - t0
    dt = time.time() - t0
    if p.returncode != 0:
        text = (p.stderr.strip() or p.stdout.strip()).splitlines()
        detail = "\n".join("      " + line for line in text[:12])
        return None, f"unetc run FAILED (exit {p.returncode}); command: {' '.join(cmd)}\n{detail}", dt
    return True, "", dt


def compare(got, ref):
    """(max abs error, relative L2 error ||got - ref|| / ||ref||) in float64."""
    g64, r64 = got.astype(np.float64), ref.astype(np.float64)
    diff = g64 - r64
    norm = np.linalg.norm(r64)
    rel = np.linalg.norm(diff) / norm if norm > 0 else np.linalg.norm(diff)
    return float(np.max(np.abs(diff))) if diff.size else 0.0, float(rel)


def fmt(v):
    return f"{v:.2e}"


def per_node_report(ir, weights, inputs, threads):
    """Every intermediate value ORT vs numpy; prints the nodes that disagree (debugging the oracle)."""
    model = build_onnx(ir, weights, debug_values=True)
    got = run_ort(model, inputs, threads)
    try:
        ref = run_numpy(ir, weights, inputs, keep_all=True)
    except OracleError as e:
        print(f"     per-node: numpy reference failed: {e}")
        return
    bad = 0
    for n in ir["nodes"]:
        _, rel = compare(got["value:" + n["name"]], ref[n["name"]])
        if rel > 1e-5:
            bad += 1
            if bad <= 20:
                print(f"     per-node: {n['name']} ({n['op']}) ORT~numpy rel L2 {fmt(rel)}")
    print(f"     per-node: {len(ir['nodes'])} values, {bad} above 1e-5 rel L2")


def check_graph(graph, args, workdir):
    """Runs one graph; returns (passed, failed) output counts."""
    shown = os.path.relpath(graph) if os.path.abspath(graph).startswith(os.getcwd() + os.sep) else graph
    print(f"== {shown}", flush=True)
    t0 = time.time()
    try:
        ir = load_ir(args.unetc, graph)
    except OracleError as e:
        print(f"   FAIL {e}")
        return 0, 1
    weights = make_weights(ir, args.seed)
    inputs = make_inputs(ir, args.seed)
    t_prep = time.time() - t0

    # numpy first: it also calibrates the batch-norm statistics the other two then use
    t0 = time.time()
    try:
        np_values = run_numpy(ir, weights, inputs, calibrate_seed=None if args.no_calibrate else args.seed)
        np_error = None
    except OracleError as e:
        np_values, np_error = None, str(e)
    except Exception as e:  # noqa: BLE001 - a bug in the reference must not hide the other results
        np_values, np_error = None, f"{type(e).__name__}: {e}"
    t_np = time.time() - t0

    t0 = time.time()
    os.makedirs(workdir, exist_ok=True)
    weights_path = os.path.join(workdir, "weights.safetensors")
    write_safetensors(weights_path, weights, {"format": "pt", "generator": "unetc Tools/oracle.py", "seed": args.seed})
    back = read_safetensors(weights_path)
    assert back.keys() == weights.keys() and all(np.array_equal(back[k], weights[k]) for k in weights)
    input_paths = {}
    for name, arr in inputs.items():
        input_paths[name] = os.path.join(workdir, f"input.{name}.npy")
        np.save(input_paths[name], arr)
    n_params = sum(a.size for a in weights.values())
    print(f"   {ir['name']}: {len(ir['nodes'])} nodes, {len(weights)} weight tensors ({n_params:,} values), "
          f"seed {args.seed}, work dir {workdir}")
    t_prep += time.time() - t0

    t0 = time.time()
    try:
        model = build_onnx(ir, weights)
        if args.keep:
            onnx.save(model, os.path.join(workdir, "model.onnx"))
        ort_out = run_ort(model, inputs, args.threads)
    except Exception as e:  # noqa: BLE001 - any exporter/ORT failure is an oracle failure
        print(f"   FAIL ONNX export / onnxruntime: {type(e).__name__}: {e}")
        return 0, len(ir["outputs"])
    t_ort = time.time() - t0

    unetc_out, unetc_msg, t_unetc = None, "skipped (--oracle-only)", 0.0
    if not args.oracle_only:
        out_dir = os.path.join(workdir, "unetc-out")
        shutil.rmtree(out_dir, ignore_errors=True)
        os.makedirs(out_dir)
        ok, unetc_msg, t_unetc = run_unetc(args.unetc, graph, weights_path, input_paths, out_dir, args.threads, args.timeout, args.plan)
        if ok:
            unetc_out = {}
            for o in ir["outputs"]:
                path = os.path.join(out_dir, o["name"] + ".npy")
                try:
                    unetc_out[o["name"]] = np.load(path) if os.path.exists(path) else None
                except ValueError as e:
                    print(f"   cannot read {path}: {e}")
                    unetc_out[o["name"]] = None
    times = f"prep {t_prep:.2f} s | ORT {t_ort:.2f} s | numpy {t_np:.2f} s"
    if not args.oracle_only:
        times += f" | unetc run {t_unetc:.2f} s"
    print(f"   {times}")
    if np_error:
        print(f"   numpy reference FAILED: {np_error}")
    if unetc_out is None and not args.oracle_only:
        print(f"   {unetc_msg}")
    if args.per_node:
        per_node_report(ir, weights, inputs, args.threads)

    shape_of = {i["name"]: i["shape"] for i in ir["inputs"]}
    shape_of.update({n["name"]: n["shape"] for n in ir["nodes"]})
    passed = failed = 0
    for o in ir["outputs"]:
        name, ref = o["name"], ort_out[o["name"]]
        problems, parts = [], []
        if list(ref.shape) != shape_of[o["value"]]:
            problems.append(f"ORT shape {list(ref.shape)} differs from the IR")
        if np_values is not None:
            _, rel_np = compare(ref, np_values[o["value"]])
            parts.append(f"ORT~numpy rel L2 {fmt(rel_np)}")
            if not rel_np <= args.tolerance:
                problems.append("ORACLE: ORT and numpy disagree")
        else:
            problems.append("ORACLE: numpy reference failed (above)")
        if not args.oracle_only:
            got = unetc_out.get(name) if unetc_out is not None else None
            if unetc_out is None:
                problems.append("no unetc output (run failed)")
            elif got is None:
                problems.append(f"unetc wrote no {name}.npy")
            elif got.shape != ref.shape:
                problems.append(f"unetc shape {list(got.shape)} != {list(ref.shape)}")
            else:
                if got.dtype != np.float32:
                    problems.append(f"unetc dtype {got.dtype} (expected float32)")
                finite = bool(np.all(np.isfinite(got)))
                max_abs, rel = compare(got, ref)
                parts.insert(0, f"unetc~ORT max abs {fmt(max_abs)} rel L2 {fmt(rel)}")
                if np_values is not None:  # unetc against the float64 reference: its own float32 error
                    parts.insert(1, f"unetc~numpy {fmt(compare(got, np_values[o['value']])[1])}")
                if not finite:
                    problems.append("NaN/Inf in unetc output")
                if not rel <= args.tolerance:
                    problems.append(f"rel L2 {fmt(rel)} > {args.tolerance:g}")
        status = "FAIL" if problems else "PASS"
        line = f"   {status} {name} {list(ref.shape)}  " + " | ".join(parts)
        if problems:
            line += "  [" + "; ".join(problems) + "]"
        print(line, flush=True)
        if problems:
            failed += 1
        else:
            passed += 1
    return passed, failed


def all_graphs():
    """graphs/*.json, graphs/bench/*.json and graphs/test/*.json (never a schema)."""
    files = []
    for sub in ("", "bench", "test"):
        files += sorted(glob.glob(os.path.join(ROOT, "graphs", sub, "*.json")))
    return [f for f in files if not f.endswith(".schema.json")]


def work_subdir(base, graph, used):
    """A per-graph directory under base: graphs/bench/x.json -> bench-x."""
    rel = os.path.relpath(os.path.abspath(graph), os.path.join(ROOT, "graphs"))
    name = os.path.splitext(rel if not rel.startswith("..") else os.path.basename(graph))[0].replace(os.sep, "-")
    while name in used:
        name += "_"
    used.add(name)
    return os.path.join(base, name)


def main(argv=None):
    p = argparse.ArgumentParser(description="ONNX/numpy correctness oracle for unetc.")
    p.add_argument("graphs", nargs="*", help="graph files (.json)")
    p.add_argument("--all", action="store_true", help="every graphs/*.json, graphs/bench/*.json and graphs/test/*.json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--workdir", help="where weights, inputs and outputs go (default: a temporary directory)")
    p.add_argument("--unetc", default=os.environ.get("UNETC", DEFAULT_UNETC), help="the unetc binary")
    p.add_argument("--keep", action="store_true", help="keep the work directory (and write model.onnx)")
    p.add_argument("--oracle-only", action="store_true", help="skip `unetc run`: check ORT against numpy only")
    p.add_argument("--plan", action="store_true", help="compile each graph to a plan file (`unetc compile`) and run the plan")
    p.add_argument("--per-node", action="store_true", help="compare every intermediate value ORT vs numpy")
    p.add_argument("--no-calibrate", action="store_true",
                   help="keep random batch-norm statistics (mean ~ 0, var in [0.5, 1.5]) instead of matching them "
                        "to the activations")
    p.add_argument("--tolerance", type=float, default=TOLERANCE, help="pass bar for relative L2 error (default 1e-4)")
    p.add_argument("--timeout", type=float, default=900, help="seconds for one `unetc run`")
    args = p.parse_args(argv)
    graphs = list(args.graphs) + (all_graphs() if args.all else [])
    if not graphs:
        p.error("give graph files or --all")

    base = args.workdir or tempfile.mkdtemp(prefix="unetc-oracle-")
    started = time.time()
    passed = failed = 0
    used = set()
    try:
        for graph in graphs:
            sub = base if len(graphs) == 1 else work_subdir(base, graph, used)
            g0 = time.time()
            try:
                ok, bad = check_graph(graph, args, sub)
            except Exception as e:  # noqa: BLE001 - report and go on with the next graph
                print(f"   FAIL oracle error: {type(e).__name__}: {e}")
                ok, bad = 0, 1
            print(f"   ({time.time() - g0:.1f} s)")
            passed += ok
            failed += bad
    finally:
        if args.keep or args.workdir:
            print(f"work directory: {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    print(f"total {time.time() - started:.1f} s")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
