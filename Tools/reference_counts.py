#!/usr/bin/env python3
"""Independent reference FLOP and parameter counts for the three bench UNets.

Pure Python (no torch). Each architecture is written out layer by layer, exactly as
/work/shared/ANCHORS.md describes it (DDPM: diffusers UNet2DModel for google/ddpm-cifar10-32).

Conventions (the same as graphs/README.md):
  * FLOPs: 2 per multiply-add of conv2d, conv_transpose2d, linear, matmul and the two
    attention products (Q K^T and A V). Elementwise ops, norms, pooling, upsampling,
    softmax, the timestep sinusoid: 0.
  * Parameters: PyTorch parameters. Conv/linear weight (+ bias), BN/GN weight + bias;
    BN running_mean / running_var are buffers and are not counted.

Usage: python3 Tools/reference_counts.py [--verbose] [--model classic|ddpm|mobile]
Exit status 1 if any model is off ANCHORS.md by 1% or more.
"""
import argparse
import sys

ANCHORS = {  # model: (GFLOP, M params) from /work/shared/ANCHORS.md
    "classic": (24.1, 7.8),
    "ddpm": (12.4, 35.7),
    "mobile": (4.2, 1.0),
}


class Counter:
    """Records one row per weighted / counted layer: (name, op, flops, params, out shape)."""

    def __init__(self):
        self.rows = []

    def add(self, name, op, flops, params, shape):
        self.rows.append((name, op, flops, params, tuple(shape)))

    # ---- layers; x is a shape tuple (C, H, W) (batch 1) or (F,) for vectors ----
    def conv(self, name, x, out, k, stride=1, pad=0, groups=1, bias=True, pads=None):
        c, h, w = x
        if pads is None:
            pads = (pad, pad, pad, pad)  # left, right, top, bottom
        l, r, t, b = pads
        ho = (h + t + b - k) // stride + 1
        wo = (w + l + r - k) // stride + 1
        macs = ho * wo * out * (c // groups) * k * k
        params = out * (c // groups) * k * k + (out if bias else 0)
        self.add(name, "conv2d", 2 * macs, params, (out, ho, wo))
        return (out, ho, wo)

    def convT(self, name, x, out, k, stride, bias=True):
        c, h, w = x
        ho, wo = (h - 1) * stride + k, (w - 1) * stride + k
        macs = h * w * c * out * k * k  # every input pixel scatters c*out*k*k products
        params = c * out * k * k + (out if bias else 0)
        self.add(name, "conv_transpose2d", 2 * macs, params, (out, ho, wo))
        return (out, ho, wo)

    def linear(self, name, x, out, tokens=1, bias=True):
        fin = x[-1]
        macs = tokens * fin * out
        self.add(name, "linear", 2 * macs, fin * out + (out if bias else 0), x[:-1] + (out,))
        return x[:-1] + (out,)

    def norm(self, name, op, x):  # batch_norm / group_norm (affine): weight + bias per channel
        self.add(name, op, 0, 2 * x[0], x)
        return x

    def attention(self, name, x):
        """diffusers Attention, single head, to_q/to_k/to_v/to_out.0 all with bias."""
        c, h, w = x
        n = h * w
        for p in ("to_q", "to_k", "to_v"):
            self.linear(f"{name}.{p}", (n, c), c, tokens=n)
        self.add(f"{name}.scores", "matmul QK^T", 2 * n * n * c, 0, (n, n))
        self.add(f"{name}.context", "matmul AV", 2 * n * n * c, 0, (n, c))
        self.linear(f"{name}.to_out.0", (n, c), c, tokens=n)
        return x

    @property
    def flops(self):
        return sum(r[2] for r in self.rows)

    @property
    def params(self):
        return sum(r[3] for r in self.rows)


def classic():
    m = Counter()
    x = (3, 256, 256)

    def double_conv(prefix, x, c):
        x = m.conv(f"{prefix}.conv1", x, c, 3, pad=1, bias=False)
        x = m.norm(f"{prefix}.bn1", "batch_norm", x)
        x = m.conv(f"{prefix}.conv2", x, c, 3, pad=1, bias=False)
        return m.norm(f"{prefix}.bn2", "batch_norm", x)

    skips = []
    for i, c in enumerate((32, 64, 128, 256)):
        x = double_conv(f"encoders.{i}", x, c)
        skips.append(x)
        x = (x[0], x[1] // 2, x[2] // 2)  # maxpool 2x2
    x = double_conv("connector", x, 512)
    for i, c in enumerate((256, 128, 64, 32)):
        x = m.convT(f"decoders.{i}.up", x, c, 2, 2)
        s = skips.pop()
        x = (x[0] + s[0], x[1], x[2])  # concat [up, skip]
        x = double_conv(f"decoders.{i}", x, c)
    m.conv("head", x, 2, 1)
    return m


def mobile():
    m = Counter()
    x = (3, 256, 256)

    def block(prefix, x, c):
        for j in (1, 2):
            x = m.conv(f"{prefix}.dw{j}", x, x[0], 3, pad=1, groups=x[0], bias=False)
            x = m.norm(f"{prefix}.bn{j}a", "batch_norm", x)
            x = m.conv(f"{prefix}.pw{j}", x, c, 1, bias=False)
            x = m.norm(f"{prefix}.bn{j}b", "batch_norm", x)
        return x

    x = m.conv("stem", x, 32, 3, pad=1)
    skips = []
    for i, c in enumerate((32, 64, 128, 256)):
        x = block(f"encoders.{i}", x, c)
        skips.append(x)
        x = (x[0], x[1] // 2, x[2] // 2)  # maxpool 2x2
    x = block("connector", x, 512)
    for i, c in enumerate((256, 128, 64, 32)):
        x = (x[0], x[1] * 2, x[2] * 2)  # nearest 2x
        x = m.conv(f"decoders.{i}.up", x, c, 1)
        s = skips.pop()
        x = (x[0] + s[0], x[1], x[2])  # concat [up, skip]
        x = block(f"decoders.{i}", x, c)
    m.conv("head", x, 2, 1)
    return m


def ddpm():
    """diffusers UNet2DModel, google/ddpm-cifar10-32 config."""
    m = Counter()
    chans = (128, 256, 256, 256)
    temb_dim = 512
    layers = 2
    attn_down = {1}
    attn_up = {2}

    # time embedding: Timesteps(128) -> linear_1 -> SiLU -> linear_2
    t = m.linear("time_embedding.linear_1", (128,), temb_dim)
    t = m.linear("time_embedding.linear_2", t, temb_dim)

    def resnet(prefix, x, out):
        cin = x[0]
        m.norm(f"{prefix}.norm1", "group_norm", x)
        h = m.conv(f"{prefix}.conv1", x, out, 3, pad=1)
        m.linear(f"{prefix}.time_emb_proj", (temb_dim,), out)
        m.norm(f"{prefix}.norm2", "group_norm", h)
        h = m.conv(f"{prefix}.conv2", h, out, 3, pad=1)
        if cin != out:
            m.conv(f"{prefix}.conv_shortcut", x, out, 1)
        return h

    def attn(prefix, x):
        m.norm(f"{prefix}.group_norm", "group_norm", x)
        return m.attention(prefix, x)

    x = m.conv("conv_in", (3, 32, 32), chans[0], 3, pad=1)
    skips = [x]
    for i, c in enumerate(chans):
        for j in range(layers):
            x = resnet(f"down_blocks.{i}.resnets.{j}", x, c)
            if i in attn_down:
                x = attn(f"down_blocks.{i}.attentions.{j}", x)
            skips.append(x)
        if i != len(chans) - 1:
            # Downsample2D(padding=0): F.pad (0,1,0,1) then conv3x3 stride 2 pad 0
            # (same FLOPs and output size as pad 1).
            x = m.conv(f"down_blocks.{i}.downsamplers.0.conv", x, c, 3, stride=2,
                       pads=(0, 1, 0, 1))
            skips.append(x)

    x = resnet("mid_block.resnets.0", x, chans[-1])
    x = attn("mid_block.attentions.0", x)
    x = resnet("mid_block.resnets.1", x, chans[-1])

    for i, c in enumerate(reversed(chans)):
        for j in range(layers + 1):
            s = skips.pop()
            x = (x[0] + s[0], x[1], x[2])  # cat([hidden, skip])
            x = resnet(f"up_blocks.{i}.resnets.{j}", x, c)
            if i in attn_up:
                x = attn(f"up_blocks.{i}.attentions.{j}", x)
        if i != len(chans) - 1:
            x = (x[0], x[1] * 2, x[2] * 2)  # nearest 2x
            x = m.conv(f"up_blocks.{i}.upsamplers.0.conv", x, c, 3, pad=1)
    assert not skips
    m.norm("conv_norm_out", "group_norm", x)
    m.conv("conv_out", x, 3, 3, pad=1)
    return m


MODELS = {"classic": classic, "ddpm": ddpm, "mobile": mobile}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--verbose", "-v", action="store_true", help="per-layer table")
    ap.add_argument("--model", choices=sorted(MODELS), action="append")
    args = ap.parse_args()
    ok = True
    print(f"{'model':8} {'GFLOP':>10} {'anchor':>7} {'diff':>7}   {'params':>12} {'M':>8} "
          f"{'anchor':>7} {'diff':>7}")
    for name in args.model or ("classic", "ddpm", "mobile"):
        m = MODELS[name]()
        if args.verbose:
            print(f"--- {name}")
            for n, op, f, p, shape in m.rows:
                print(f"  {n:48} {op:16} {f:>14,} {p:>10,}  {list(shape)}")
        g, pm = m.flops / 1e9, m.params / 1e6
        ag, ap_ = ANCHORS[name]
        dg, dp = (g - ag) / ag * 100, (pm - ap_) / ap_ * 100
        good = abs(dg) < 1 and abs(dp) < 1  # within 1% of ANCHORS.md (which rounds to 0.1)
        ok &= good
        print(f"{name:8} {g:10.4f} {ag:7.1f} {dg:+6.2f}%   {m.params:12,} {pm:8.4f} "
              f"{ap_:7.1f} {dp:+6.2f}%  {'OK' if good else 'MISMATCH'}")
        print(f"{'':8} flops={m.flops:,}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
