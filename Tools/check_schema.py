#!/usr/bin/env python3
"""Check graphs/schema/unetc.schema.json against the graph files and against itself.

  * the schema is a valid Draft 2020-12 schema;
  * its operator list and per-operator attributes match the table in graphs/README.md;
  * every graphs/*.json and graphs/bench/*.json parses (no duplicate keys) and validates;
  * known-good snippets are accepted and known-bad snippets are REJECTED, so the check
    cannot pass vacuously (e.g. with an empty schema).

Prints one line per check (`ok ...` or `FAIL ...` with the errors and their JSON paths)
and ends with `N passed, M failed`. Exits 1 if anything failed.

Usage: Tools/setup-venv.sh && Tools/.venv/bin/python Tools/check_schema.py [FILE.json ...]
(with FILE arguments only those graph files are checked, plus the self-checks).
"""
import copy
import glob
import json
import os
import re
import sys

TOOLS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TOOLS)
GRAPHS = os.path.join(ROOT, "graphs")
SCHEMA_PATH = os.path.join(GRAPHS, "schema", "unetc.schema.json")
README_PATH = os.path.join(GRAPHS, "README.md")

try:
    from jsonschema import Draft202012Validator
except ImportError:  # fall back to the project's venv if we were started with another python
    venv_py = os.path.join(TOOLS, ".venv", "bin", "python")
    if os.path.exists(venv_py) and os.path.realpath(sys.executable) != os.path.realpath(venv_py) \
            and not os.environ.get("UNETC_CHECK_SCHEMA_REEXEC"):
        os.environ["UNETC_CHECK_SCHEMA_REEXEC"] = "1"
        os.execv(venv_py, [venv_py] + sys.argv)
    sys.stderr.write("check_schema: jsonschema is not installed; run Tools/setup-venv.sh and use Tools/.venv/bin/python\n")
    sys.exit(2)

MAX_ERRORS = 20


class DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise DuplicateKey(f"duplicate key {k!r}")
        seen[k] = v
    return seen


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f, object_pairs_hook=_no_duplicates)


def rel(path):
    return os.path.relpath(path, ROOT)


def leaf_errors(err):
    """The most specific errors under an anyOf/oneOf error (for readable output)."""
    if not err.context:
        return [err]
    best = max(len(e.absolute_path) for e in err.context)
    return [e for e in err.context if len(e.absolute_path) == best] or [err]


def format_errors(validator, instance):
    errors = sorted(validator.iter_errors(instance), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    lines = []
    for e in errors:
        msg = e.message
        if e.validator == "not" and isinstance(e.schema, dict) and e.schema.get("description"):
            msg = e.schema["description"]  # e.g. "Not allowed here: `skip` belongs to ..."
        lines.append(f"  {e.json_path}: {msg}")
        subs = leaf_errors(e)
        if not (len(subs) == 1 and subs[0] is e):
            for s in subs[:4]:
                lines.append(f"      - {s.json_path}: {s.message}")
    if len(lines) > MAX_ERRORS:
        lines = lines[:MAX_ERRORS] + [f"  ... and {len(lines) - MAX_ERRORS} more"]
    return errors, lines


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self, what):
        self.passed += 1
        print(f"ok {what}")

    def fail(self, what, lines=()):
        self.failed += 1
        print(f"FAIL {what}")
        for line in lines:
            print(line)


# --------------------------------------------------------------------------------------
# README operator table vs schema

def readme_ops(readme_text):
    """{op: set(attribute names)} from the README's operator table."""
    ops = {}
    in_table = False
    for line in readme_text.splitlines():
        if line.startswith("| op |"):
            in_table = True
            continue
        if in_table:
            if not line.startswith("|"):
                break
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) < 3 or set(cells[0]) <= set("-: "):
                continue
            names = re.findall(r"`([a-z0-9_]+)`", cells[0])
            attrs = set()
            for tok in re.findall(r"`([^`]*)`", cells[2]):
                m = re.fullmatch(r"([a-z_][a-z0-9_]*)(\s*\[.*\])?", tok)
                if m:
                    attrs.add(m.group(1))
            for n in names:
                ops[n] = attrs
    return ops


def check_readme_sync(schema, res):
    try:
        with open(README_PATH, encoding="utf-8") as f:
            table = readme_ops(f.read())
    except OSError as e:
        res.fail(f"schema operators match README table ({e})")
        return
    defs = schema.get("$defs", {})
    enum = defs.get("opName", {}).get("enum", [])
    problems = []
    if not table:
        problems.append("  no operator table found in graphs/README.md")
    missing = sorted(set(table) - set(enum))
    extra = sorted(set(enum) - set(table))
    if missing:
        problems.append(f"  ops in README but not in $defs.opName.enum: {missing}")
    if extra:
        problems.append(f"  ops in $defs.opName.enum but not in README: {extra}")
    for op, attrs in sorted(table.items()):
        d = defs.get("op." + op)
        if d is None:
            problems.append(f"  no $defs['op.{op}']")
            continue
        have = set(d.get("properties", {})) - {"op"}
        if have != attrs:
            problems.append(f"  {op}: README attributes {sorted(attrs)}, schema {sorted(have)}")
        allowed = set(d.get("propertyNames", {}).get("enum", []))
        if not attrs <= allowed:
            problems.append(f"  {op}: propertyNames does not allow {sorted(attrs - allowed)}")
    if problems:
        res.fail("schema operators and attributes match the README table", problems)
    else:
        res.ok(f"schema operators and attributes match the README table ({len(table)} ops)")


# --------------------------------------------------------------------------------------
# snippets

BASE = {
    "unetc": 1,
    "name": "t",
    "inputs": {"x": [1, 3, 8, 8]},
    "nodes": [{"name": "c", "op": "conv2d", "out": 4, "kernel": 3, "pad": 1}],
    "outputs": {"y": "c"},
}

UNET_BASE = {
    "unetc": 1,
    "name": "t",
    "inputs": {"x": [1, 3, 16, 16]},
    "blocks": {"DoubleConv": {"params": ["out"], "body": [
        {"name": "conv1", "op": "conv2d", "out": "$out", "kernel": 3, "pad": 1, "bias": False},
        {"name": "bn1", "op": "batch_norm"},
        {"op": "relu"},
    ]}},
    "unet": {
        "input": "x",
        "stem": [{"name": "conv_in", "op": "conv2d", "out": 8, "kernel": 3, "pad": 1}],
        "encoders": [{"block": "DoubleConv", "out": 8, "down": "max_pool2d"}],
        "connector": {"block": "DoubleConv", "out": 16},
        "decoders": [{"up": {"op": "conv_transpose2d", "out": 8, "kernel": 2, "stride": 2},
                      "merge": "concat", "block": "DoubleConv", "out": 8}],
        "head": [{"name": "head", "op": "conv2d", "out": 2, "kernel": 1}],
    },
    "outputs": {"logits": "head"},
}


def variant(base, edit):
    doc = copy.deepcopy(base)
    edit(doc)
    return doc


def node(step, extra_nodes=()):
    """BASE with its nodes replaced by [step, *extra_nodes]."""
    return lambda d: d.__setitem__("nodes", [step, *extra_nodes])


def setp(path, value):
    def edit(d):
        cur = d
        for k in path[:-1]:
            cur = cur[k]
        cur[path[-1]] = value
    return edit


def delp(path):
    def edit(d):
        cur = d
        for k in path[:-1]:
            cur = cur[k]
        del cur[path[-1]]
    return edit


GOOD = [
    ("minimal graph with nodes", BASE),
    ("README unet example (short forms)", UNET_BASE),
    ("$schema key", variant(BASE, setp(["$schema"], "./unetc.schema.json"))),
    ("input with shape and role", variant(BASE, setp(["inputs", "t"], {"shape": [1], "role": "timestep"}))),
    ("expression attributes", variant(BASE, node(
        {"name": "c", "op": "conv2d", "out": "($in + $out) / 2", "kernel": "$k", "pad": "same", "bias": "$in != $out"}))),
    ("step with when and list in", variant(BASE, node(
        {"name": "c", "op": "concat", "in": ["x", "x"], "when": "$a > 0"}))),
    ("split parts referenced as name[i]", variant(BASE, node(
        {"name": "s", "op": "split", "sizes": [1, 2]}, [{"name": "c", "op": "add", "in": ["s[0]", "s[1]"]}]))),
    ("block with params object and inputs", variant(BASE, setp(["blocks"], {"ResBlock": {
        "params": {"out": None, "groups": 32}, "inputs": ["x", "temb"],
        "body": [{"name": "norm1", "op": "group_norm", "groups": "$groups"},
                 {"name": "add", "op": "add", "in": ["norm1", "temb"]}],
        "output": "add"}}))),
    ("block instance step with parameters", variant(BASE, node({"name": "c", "block": "B", "out": 4, "flag": True}))),
    ("upsample, pad, crop, clamp, attention attributes", variant(BASE, node(
        {"name": "u", "op": "upsample", "size": [4, 4], "mode": "bilinear", "align_corners": True},
        [{"op": "pad", "pads": [0, 1, 0, 1], "mode": "reflect"},
         {"op": "crop", "size": [4, 4], "offset": [0, 0]},
         {"op": "clamp", "min": 0},
         {"op": "attention", "heads": 8, "head_dim": 64, "qkv_bias": False},
         {"name": "c", "op": "gelu", "approximate": "tanh"}]))),
    ("general-form levels with skip/merge, named and dropped skips, gate, path", variant(UNET_BASE, setp(["unet"], {
        "input": "x",
        "encoders": [{"path": "down_blocks.0", "steps": [
            {"name": "r0", "block": "DoubleConv", "out": 8, "skip": True},
            {"name": "down", "op": "conv2d", "out": 8, "kernel": 3, "stride": 2, "pad": 1, "skip": "d0"}]},
            {"block": "DoubleConv", "out": 16, "down": {"op": "avg_pool2d", "kernel": 2}, "skip": "e1", "path": "enc1"}],
        "connector": {"steps": [{"block": "DoubleConv", "out": 16}]},
        "decoders": [
            {"up": "upsample", "merge": "add", "skip": "e1", "gate": {"block": "Gate", "inter": 4}, "block": "DoubleConv", "out": 16},
            {"up": "upsample", "skip": None, "merge": "concat_skip_first", "block": "DoubleConv", "out": 8},
            {"path": "up_blocks.1", "steps": [{"name": "r", "block": "DoubleConv", "out": 8, "merge": "concat", "skip": "d0"},
                                              {"op": "conv2d", "out": 8, "kernel": 1, "merge": "add"}]}],
        "head": [{"name": "head", "op": "conv2d", "out": 2, "kernel": 1}]}))),
    ("empty connector object", variant(UNET_BASE, setp(["unet", "connector"], {}))),
    ("stem step pushing a skip (diffusers conv_in)", variant(UNET_BASE, setp(["unet", "stem", 0, "skip"], True))),
]

BAD = [
    ("unknown top-level key", variant(BASE, setp(["node"], []))),
    ("missing unetc", variant(BASE, delp(["unetc"]))),
    ("unetc version 2", variant(BASE, setp(["unetc"], 2))),
    ("missing name", variant(BASE, delp(["name"]))),
    ("missing inputs", variant(BASE, delp(["inputs"]))),
    ("missing outputs", variant(BASE, delp(["outputs"]))),
    ("neither nodes nor unet", variant(BASE, delp(["nodes"]))),
    ("unknown op", variant(BASE, node({"name": "c", "op": "conv3d", "out": 4, "kernel": 3}))),
    ("unknown attribute on conv2d (typo)", variant(BASE, node({"name": "c", "op": "conv2d", "out": 4, "kernal": 3}))),
    ("attribute of another op (relu with out)", variant(BASE, node({"name": "c", "op": "relu", "out": 4}))),
    ("conv2d without out", variant(BASE, node({"name": "c", "op": "conv2d", "kernel": 3}))),
    ("step with neither op nor block", variant(BASE, node({"name": "c", "in": "x"}))),
    ("step with both op and block", variant(BASE, node({"name": "c", "op": "relu", "block": "B"}))),
    ("integer attribute as a plain word", variant(BASE, node({"name": "c", "op": "conv2d", "out": 4, "kernel": "three"}))),
    ("conv2d pad 'valid'", variant(BASE, node({"name": "c", "op": "conv2d", "out": 4, "kernel": 3, "pad": "valid"}))),
    ("negative channel count", variant(BASE, node({"name": "c", "op": "linear", "out": -4}))),
    ("gelu approximate 'fast'", variant(BASE, node({"name": "c", "op": "gelu", "approximate": "fast"}))),
    ("upsample mode 'bicubic'", variant(BASE, node({"name": "c", "op": "upsample", "mode": "bicubic"}))),
    ("upsample with both scale and size", variant(BASE, node({"name": "c", "op": "upsample", "scale": 2, "size": [4, 4]}))),
    ("clamp without min and max", variant(BASE, node({"name": "c", "op": "clamp"}))),
    ("pad with 3 pads", variant(BASE, node({"name": "c", "op": "pad", "pads": [1, 1, 1]}))),
    ("when as a number", variant(BASE, node({"name": "c", "op": "relu", "when": 1}))),
    ("in as a number", variant(BASE, node({"name": "c", "op": "relu", "in": 3}))),
    ("skip on a plain node step", variant(BASE, node({"name": "c", "op": "relu", "skip": True}))),
    ("skip on a head step", variant(UNET_BASE, setp(["unet", "head", 0, "skip"], True))),
    ("unknown input role", variant(BASE, setp(["inputs", "x"], {"shape": [1, 3, 8, 8], "role": "picture"}))),
    ("unknown key in input object", variant(BASE, setp(["inputs", "x"], {"shape": [1, 3, 8, 8], "dtype": "f32"}))),
    ("input of rank 7", variant(BASE, setp(["inputs", "x"], [1, 1, 1, 1, 1, 1, 1]))),
    ("input dimension 0", variant(BASE, setp(["inputs", "x"], [1, 0, 8, 8]))),
    ("unknown key in a block definition", variant(UNET_BASE, setp(["blocks", "DoubleConv", "param"], ["out"]))),
    ("block definition without body", variant(UNET_BASE, delp(["blocks", "DoubleConv", "body"]))),
    ("unknown key in unet", variant(UNET_BASE, setp(["unet", "encoder"], []))),
    ("unknown key in a general-form encoder", variant(UNET_BASE, setp(["unet", "encoders", 0], {"steps": [], "dowm": "max_pool2d"}))),
    ("unknown key in a short-form decoder without block", variant(UNET_BASE, setp(["unet", "decoders", 0], {"up": "upsample", "mrege": "add"}))),
    ("unknown merge", variant(UNET_BASE, setp(["unet", "decoders", 0, "merge"], "sum"))),
    ("unknown down op", variant(UNET_BASE, setp(["unet", "encoders", 0, "down"], "maxpool"))),
    ("merge on an encoder step", variant(UNET_BASE, setp(["unet", "encoders", 0], {"steps": [{"block": "DoubleConv", "out": 8, "merge": "add"}]}))),
    ("skip true on a decoder step", variant(UNET_BASE, setp(["unet", "decoders", 0], {"steps": [{"block": "DoubleConv", "out": 8, "skip": True}]}))),
    ("output naming a non-string", variant(BASE, setp(["outputs", "y"], 3))),
    ("expression with a character outside the expression language", variant(BASE, node(
        {"name": "c", "op": "conv2d", "out": "$out ^ 2", "kernel": 3}))),
    ("channel count above the 2^24 dimension limit", variant(BASE, node({"name": "c", "op": "linear", "out": 99999999999999999999}))),
    ("reshape dimension -2", variant(BASE, node({"name": "c", "op": "reshape", "shape": [0, -2]}))),
]


def check_snippets(validator, res):
    for what, doc in GOOD:
        errors, lines = format_errors(validator, doc)
        if errors:
            res.fail(f"accepts: {what}", lines)
        else:
            res.ok(f"accepts: {what}")
    for what, doc in BAD:
        errors, _ = format_errors(validator, doc)
        if errors:
            res.ok(f"rejects: {what}")
        else:
            res.fail(f"rejects: {what} (the schema accepted it)")


# --------------------------------------------------------------------------------------

def graph_files(args):
    if args:
        return [os.path.abspath(a) for a in args]
    files = sorted(glob.glob(os.path.join(GRAPHS, "*.json"))) + sorted(glob.glob(os.path.join(GRAPHS, "bench", "*.json"))) + sorted(glob.glob(os.path.join(GRAPHS, "test", "*.json")))
    return [f for f in files if not f.endswith(".schema.json")]


def main(argv):
    res = Results()
    try:
        schema = load_json(SCHEMA_PATH)
        Draft202012Validator.check_schema(schema)
    except Exception as e:  # noqa: BLE001 - report any failure to load the schema
        res.fail(f"{rel(SCHEMA_PATH)} is a valid Draft 2020-12 schema", [f"  {type(e).__name__}: {e}"])
        print(f"{res.passed} passed, {res.failed} failed")
        return 1
    res.ok(f"{rel(SCHEMA_PATH)} is a valid Draft 2020-12 schema")
    validator = Draft202012Validator(schema)

    check_readme_sync(schema, res)
    check_snippets(validator, res)

    files = graph_files(argv)
    if not files:
        res.fail("graph files found under graphs/ and graphs/bench/ (none)")
    for path in files:
        try:
            doc = load_json(path)
        except (OSError, ValueError) as e:
            res.fail(rel(path), [f"  $: cannot parse: {e}"])
            continue
        errors, lines = format_errors(validator, doc)
        if errors:
            res.fail(rel(path), lines)
        else:
            res.ok(rel(path))

    print(f"{res.passed} passed, {res.failed} failed")
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
