"""PAD in plain PyTorch (CPU, float64), drawing pad's random numbers.

An implementation of the training cycle written from the description in
pad-reference.md (network, Wake, NREM, REM, occlusion, mixing, conditions),
independent of pad's Go code, for three jobs:

  fixtures    the golden fixtures testdata/fixtures/pad_step_c{1,3}: two
              full Wake/NREM/REM iterations of a small PAD net (nf 8, nz 16,
              batch 8) with every input, activation, loss, gradient and
              parameter after each Adam step, in float64.
  draws       a small file of pad's random numbers (Philox words, uniforms,
              normals, shuffles, occlusion masks, initial parameters,
              tinted images) that pad's Go test tools/parity compares
              with its own draws bit for bit.
  trajectory  many iterations of a condition on the embedded Fashion-MNIST
              sample (C=1) or its tinted colour version (C=3), with pad's
              batch order, masks and noise: every loss of every iteration
              and every parameter every few iterations, for comparison with
              pad's float64 CPU twin (tools/cmd/parity).

Random numbers follow internal/rng (Philox4x32-10; counter = (block, low
and high word of the sequence number, stream), key = seed) and
backend/occlusion.go, reimplemented here with numpy. Files are written in
the safetensors format by hand (no safetensors package), so Debian's
python3-torch (1.13) runs this script.

Usage (from the repository root, with /usr/bin/python3 where torch lives):

  python3 scripts/pad_torch.py fixtures --replay DIR --out OUT
          [--committed testdata/fixtures] [--tol 1e-12] [-v]
      Replay: take the initial parameters and each iteration's x, mask and
      noise from DIR/pad_step_c{1,3}.safetensors (the float64 originals in
      ../shared/fixtures, or the float32 copies in testdata/fixtures),
      compute everything else, write OUT/pad_step_c{1,3}.safetensors and
      OUT/fixtures.json, and print the largest relative error against DIR
      over every computed tensor. Each tensor must agree to --tol or to 4x
      its floor: how far it moves when the replayed inputs move by one ulp
      (a few gradients at initialisation are sums of large cancelling
      terms that no float64 computation pins down to 1e-12). --committed
      also counts the values that differ after rounding to float32.
  python3 scripts/pad_torch.py fixtures --out OUT [--seed S]
      Draw: make the fixtures from pad's own draws (initial parameters,
      the first two batches of the sample's epoch-0 shuffle, occlusion and
      REM noise of iterations 0 and 1).
  python3 scripts/pad_torch.py draws --out FILE
  python3 scripts/pad_torch.py trajectory --out FILE [--condition pad]
      [--channels 1|3] [--nf 64] [--nz 256] [--batch 8] [--images 725]
      [--iters 300] [--every 50] [--seed 1] [--threads 0] [--progress N]
      [--slope float32|NUMBER] [--nudge] [--zero-grad none|zero]

`make fixtures`, `make fixtures-draw`, `make parity-draws`, `make parity`
and `make parity-short` run these.
"""
import argparse
import gzip
import hashlib
import json
import math
import os
import struct
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMBEDDED = os.path.join(ROOT, "dataset", "embedded")

# ---------------------------------------------------------------------------
# safetensors, by hand

_DTYPES = {"F64": np.float64, "F32": np.float32, "I64": np.int64, "U8": np.uint8, "I32": np.int32}
_NAMES = {np.dtype(v).str[1:]: k for k, v in _DTYPES.items()}


def read_safetensors(path):
    """Returns ({name: ndarray}, metadata dict or None, [names in file order])."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", None)
    data = raw[8 + n:]
    out = {}
    for name, h in header.items():
        b, e = h["data_offsets"]
        dt = np.dtype(_DTYPES[h["dtype"]]).newbyteorder("<")
        out[name] = np.frombuffer(data[b:e], dtype=dt).reshape(h["shape"]).astype(dt.newbyteorder("="))
    return out, meta, list(header)


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: ndarray} (tensors in sorted name order) and string metadata."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs, off = [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        code = _NAMES[a.dtype.str[1:]]
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": code, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------
# pad's random numbers (internal/rng, backend/occlusion.go)

STREAM_INIT, STREAM_SHUFFLE, STREAM_WAKE_NOISE, STREAM_NREM_MASK, STREAM_REM_NOISE = 1, 2, 3, 4, 5
M32 = np.uint64(0xFFFFFFFF)


def philox(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 of counters (arrays or ints) under the key (k0, k1):
    an array [..., 4] of uint32."""
    c0, c1, c2, c3 = np.broadcast_arrays(*(np.asarray(c, dtype=np.uint64) & M32 for c in (c0, c1, c2, c3)))
    k0, k1 = np.uint64(k0) & M32, np.uint64(k1) & M32
    m0, m1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
    w0, w1 = np.uint64(0x9E3779B9), np.uint64(0xBB67AE85)
    for r in range(10):
        if r > 0:
            k0, k1 = (k0 + w0) & M32, (k1 + w1) & M32
        p0, p1 = m0 * c0, m1 * c2
        c0, c1, c2, c3 = (p1 >> np.uint64(32)) ^ c1 ^ k0, p1 & M32, (p0 >> np.uint64(32)) ^ c3 ^ k1, p0 & M32
    return np.stack([c0, c1, c2, c3], axis=-1).astype(np.uint32)


class Key:
    """One stream of pad's random numbers: (seed, stream, sequence)."""

    def __init__(self, seed, stream, seq):
        self.seed, self.stream, self.seq = int(seed), int(stream), int(seq)

    def blocks(self, b):
        """The four words of each block index in b: [len(b), 4] uint32."""
        return philox(np.asarray(b, dtype=np.uint64), self.seq & 0xFFFFFFFF, self.seq >> 32, self.stream,
                      self.seed & 0xFFFFFFFF, self.seed >> 32)

    def words(self, n, first_block=0):
        nb = (n + 3) // 4
        return self.blocks(np.arange(first_block, first_block + nb)).reshape(-1)[:n]

    def uniform(self, n):
        return uniform_from_word(self.words(n))

    def normal(self, n):
        """FillNormal: block b gives normals 4b..4b+3 from two Box-Muller pairs."""
        u = uniform_from_word(self.blocks(np.arange((n + 3) // 4)))
        n0, n1 = box_muller(u[:, 0], u[:, 1])
        n2, n3 = box_muller(u[:, 2], u[:, 3])
        return np.stack([n0, n1, n2, n3], axis=-1).reshape(-1)[:n]

    def intn(self, i, n, blocks=None):
        """Integer i of the stream, uniform in [0, n): the 64 bits of words
        2i, 2i+1, times n, high 64 bits (Lemire)."""
        w = blocks[i // 2] if blocks is not None else self.blocks([i // 2])[0]
        j = (i % 2) * 2
        x = (int(w[j]) << 32) | int(w[j + 1])
        return (x * n) >> 64


def uniform_from_word(w):
    """The top 23 bits plus one half, times 2^-23: float32 in (0, 1), exact."""
    return ((np.asarray(w, dtype=np.uint32) >> np.uint32(9)).astype(np.float32) + np.float32(0.5)) * np.float32(2.0 ** -23)


def box_muller(u1, u2):
    """Two float32 normals from two float32 uniforms, computed in float64
    and rounded once."""
    r = np.sqrt(-2.0 * np.log(u1.astype(np.float64)))
    t = (2.0 * math.pi) * u2.astype(np.float64)
    return (r * np.cos(t)).astype(np.float32), (r * np.sin(t)).astype(np.float32)


def permutation(n, key):
    """Fisher-Yates: for i = n-1 … 1 swap i with Intn(n-1-i, i+1)."""
    perm = list(range(n))
    blocks = key.blocks(np.arange((n + 1) // 2)) if n > 1 else None
    for i in range(n - 1, 0, -1):
        j = key.intn(n - 1 - i, i + 1, blocks)
        perm[i], perm[j] = perm[j], perm[i]
    return np.array(perm, dtype=np.int64)


def occlusion_params(key, m=0, h=32, w=32, max_tile=8):
    bpm = 1 + (h * w + 3) // 4
    b = key.blocks([m * bpm])[0]
    p = uniform_from_word(b[0])
    tile = 1 + ((int(b[1]) * max_tile) >> 32)
    return np.float32(p), tile


def occlusion_mask(key, masks=1, h=32, w=32, max_tile=8, p=None, tile=None):
    """Masks [masks, h, w] of 0/1 (float32): mask m has a drop probability
    and a tile size from block m*bpm; tile j of the row-major grid of
    tile×tile squares from the top-left corner (cut at the border) is
    dropped iff the uniform of word j of blocks m*bpm+1, … is below p."""
    bpm = 1 + (h * w + 3) // 4
    out = np.ones((masks, h, w), dtype=np.float32)
    for m in range(masks):
        pm, tm = occlusion_params(key, m, h, w, max_tile)
        if p is not None:
            pm = np.float32(p)
        if tile is not None:
            tm = tile
        gh, gw = (h + tm - 1) // tm, (w + tm - 1) // tm
        u = uniform_from_word(key.words(gh * gw, first_block=m * bpm + 1))
        drop = (u < pm).reshape(gh, gw)
        full = np.repeat(np.repeat(drop, tm, axis=0), tm, axis=1)[:h, :w]
        out[m][full] = 0
    return out


def init_params(named_shapes, seed, first_seq):
    """pad's initialisation: tensor i uses the stream (seed, init, first_seq+i);
    weights 0.02·N(0, 1) and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)) in
    float32, fan_in = weight.size(1)·kh·kw of the layer (PyTorch's rule, also
    for ConvTranspose2d)."""
    out, fan = {}, None
    for i, (name, shape) in enumerate(named_shapes):
        key = Key(seed, STREAM_INIT, first_seq + i)
        n = int(np.prod(shape))
        if name.endswith("weight"):
            out[name] = (key.normal(n) * np.float32(0.02)).reshape(shape)
            fan = shape[1] * shape[2] * shape[3]
        else:
            bound = 1.0 / math.sqrt(fan)
            out[name] = (-bound + 2.0 * bound * key.uniform(n).astype(np.float64)).astype(np.float32).reshape(shape)
    return out


# ---------------------------------------------------------------------------
# data: the embedded Fashion-MNIST sample, resized like the reference
# pipeline, and its tinted colour version

TINT_SEED, TINT_STREAM = 0x74696E74, 101


def read_idx_gz(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    (magic,) = struct.unpack(">I", raw[:4])
    nd = magic & 0xFF
    dims = struct.unpack(">" + "I" * nd, raw[4:4 + 4 * nd])
    return np.frombuffer(raw[4 + 4 * nd:], dtype=np.uint8).reshape(dims)


def embedded_sample(n):
    """The first n training images of the embedded sample, 28×28 resized to
    32×32 bilinearly by PIL (torchvision's Resize(32)): [n, 1, 32, 32] uint8."""
    from PIL import Image
    imgs = read_idx_gz(os.path.join(EMBEDDED, "train-images-idx3-ubyte.gz"))[:n]
    out = np.empty((len(imgs), 1, 32, 32), dtype=np.uint8)
    for i, im in enumerate(imgs):
        out[i, 0] = np.asarray(Image.fromarray(im, mode="L").resize((32, 32), Image.BILINEAR))
    return out


def tint(gray):
    """Colour version of gray images [n, 1, 32, 32]: image i gets a
    foreground colour (bytes 0-2 of word 0) and a background colour (bytes
    0-2 of word 1) of block 0 of the stream (TINT_SEED, TINT_STREAM, i);
    channel c of a pixel of gray level g is (g·fg_c + (255−g)·bg_c + 127) div
    255."""
    n = gray.shape[0]
    w = philox(np.zeros(n, dtype=np.uint64), np.arange(n, dtype=np.uint64), 0, TINT_STREAM,
               TINT_SEED & 0xFFFFFFFF, TINT_SEED >> 32)
    shifts = np.array([0, 8, 16], dtype=np.uint32)
    fg = ((w[:, 0:1] >> shifts) & 255).astype(np.int64)  # [n, 3]
    bg = ((w[:, 1:2] >> shifts) & 255).astype(np.int64)
    g = gray[:, 0].astype(np.int64)[:, None]  # [n, 1, 32, 32]
    out = (g * fg[:, :, None, None] + (255 - g) * bg[:, :, None, None] + 127) // 255
    return out.astype(np.uint8)


def training_set(channels, n):
    g = embedded_sample(n)
    return g if channels == 1 else tint(g)


def scale(u8):
    """(v/255 − 0.5)/0.5 in float32, as ToTensor and Normalize(0.5, 0.5) round it."""
    x = u8.astype(np.float32) / np.float32(255)
    return (x - np.float32(0.5)) / np.float32(0.5)


# ---------------------------------------------------------------------------
# the model and the cycle, in PyTorch


def torch_modules(slope=0.2):
    """The classes Encoder and Generator (float64 here; float32 in
    scripts/torch_fixture32.py, which imports them)."""
    import torch
    import torch.nn as nn

    class Encoder(nn.Module):
        """E: conv1-3 (4×4, stride 2, pad 1, LeakyReLU 0.2), then the latent
        head conv4 (pad 0, no activation) and the discriminator head dis
        (pad 0, sigmoid), both reading conv3's output."""

        def __init__(self, c, nf, nz):
            super().__init__()
            self.conv1 = nn.Sequential(nn.Conv2d(c, nf, 4, 2, 1), nn.LeakyReLU(slope))
            self.conv2 = nn.Sequential(nn.Conv2d(nf, 2 * nf, 4, 2, 1), nn.LeakyReLU(slope))
            self.conv3 = nn.Sequential(nn.Conv2d(2 * nf, 4 * nf, 4, 2, 1), nn.LeakyReLU(slope))
            self.conv4 = nn.Sequential(nn.Conv2d(4 * nf, nz, 4, 2, 0))
            self.dis = nn.Sequential(nn.Conv2d(4 * nf, 1, 4, 2, 0))

        def forward(self, x):
            h = self.conv3(self.conv2(self.conv1(x)))
            return self.conv4(h).flatten(1), torch.sigmoid(self.dis(h)).flatten()

    class Reverse(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.view_as(x)

        @staticmethod
        def backward(ctx, g):
            return -g

    class Generator(nn.Module):
        """G: z as nz×1×1, tconv1 (stride 1, pad 0), tconv2-4 (stride 2,
        pad 1), LeakyReLU 0.2 after the first three, tanh at the end."""

        def __init__(self, c, nf, nz):
            super().__init__()
            self.tconv1 = nn.Sequential(nn.ConvTranspose2d(nz, 4 * nf, 4, 1, 0), nn.LeakyReLU(slope))
            self.tconv2 = nn.Sequential(nn.ConvTranspose2d(4 * nf, 2 * nf, 4, 2, 1), nn.LeakyReLU(slope))
            self.tconv3 = nn.Sequential(nn.ConvTranspose2d(2 * nf, nf, 4, 2, 1), nn.LeakyReLU(slope))
            self.tconv4 = nn.Sequential(nn.ConvTranspose2d(nf, c, 4, 2, 1), nn.Tanh())

        def forward(self, z, reverse=False):
            h = z.view(z.size(0), z.size(1), 1, 1)
            out = self.tconv4(self.tconv3(self.tconv2(self.tconv1(h))))
            return Reverse.apply(out) if reverse else out

    return Encoder, Generator


# The conditions this script runs: W, N, R, wake noise ε, how REM mixes
# (memories: 0.25z + 0.25z_old + 0.5n, 0.5z + 0.5n on an epoch's first
# iteration; one: 0.5z + 0.5n always), and whether NREM replays
# 0.5z + 0.5z_old (when there is a z_old).
CONDITIONS = {
    "pad": dict(W=1.0, N=1.0, R=1.0, eps=0.0, mix="memories", nrem_mix=False),
    "no-memory-mix": dict(W=1.0, N=1.0, R=1.0, eps=0.0, mix="one", nrem_mix=False),
    "nrem-mix": dict(W=1.0, N=1.0, R=1.0, eps=0.0, mix="memories", nrem_mix=True),
    "no-rem": dict(W=1.0, N=0.5, R=0.0, eps=0.5, mix="memories", nrem_mix=False),
    "no-nrem": dict(W=1.0, N=0.0, R=1.0, eps=0.0, mix="memories", nrem_mix=False),
    "wake-only": dict(W=1.0, N=0.0, R=0.0, eps=0.5, mix="memories", nrem_mix=False),
}

LOSSES = ["wake_rec", "wake_kl", "wake_real", "nrem", "rem_fake", "d_x", "d_gz", "latent_norm"]


class PADTorch:
    """One PAD model in float64 with the reference's optimisers."""

    def __init__(self, c, nf, nz, cond="pad", lr=2e-4, betas=(0.5, 0.999), eps=1e-8, slope=0.2, set_to_none=True):
        import torch
        Encoder, Generator = torch_modules(slope)
        self.torch = torch
        self.E = Encoder(c, nf, nz).double()
        self.G = Generator(c, nf, nz).double()
        # PyTorch's single-tensor Adam; every phase starts with zero_grad,
        # which (set_to_none) leaves a tensor without a gradient in a phase
        # out of the step, its step count unchanged.
        self.oe = torch.optim.Adam(self.E.parameters(), lr=lr, betas=betas, eps=eps, foreach=False)
        self.og = torch.optim.Adam(self.G.parameters(), lr=lr, betas=betas, eps=eps, foreach=False)
        self.c = CONDITIONS[cond]
        self.z_old = None
        # PyTorch 2.x: zero_grad sets gradients to None (pad's semantics).
        # PyTorch 1.x zeroed them, so Adam kept stepping every tensor of an
        # optimiser in every phase (on momentum alone where the phase gave
        # no gradient); set_to_none=False reproduces that.
        self.set_to_none = set_to_none

    def nets(self):
        return (("E.", self.E), ("G.", self.G))

    def load(self, params):
        with self.torch.no_grad():
            for prefix, net in self.nets():
                for name, p in net.named_parameters():
                    p.copy_(self.torch.from_numpy(np.asarray(params[prefix + name], dtype=np.float64)).reshape(p.shape))

    def init_pad(self, seed):
        """pad's initial parameters (model.Net.Init): E's tensors use init
        streams 0.., G's continue after E's."""
        e = [(n, tuple(p.shape)) for n, p in self.E.named_parameters()]
        g = [(n, tuple(p.shape)) for n, p in self.G.named_parameters()]
        pe, pg = init_params(e, seed, 0), init_params(g, seed, len(e))
        params = {"E." + k: v for k, v in pe.items()}
        params.update({"G." + k: v for k, v in pg.items()})
        self.load(params)

    def params(self):
        return {prefix + n: p.detach().numpy().copy() for prefix, net in self.nets() for n, p in net.named_parameters()}

    def _record(self, rec, phase, nets, after=True):
        if rec is None:
            return
        for prefix, net in nets:
            for name, p in net.named_parameters():
                if p.grad is not None:
                    rec[f"{phase}/grad/{prefix}{name}"] = p.grad.detach().numpy().copy()
                if after:
                    rec[f"{phase}/after/{prefix}{name}"] = p.detach().numpy().copy()

    def step(self, x, mask, rem_noise, wake_noise=None, first=False, rec=None):
        """One iteration: Wake, NREM, REM. x [N, C, 32, 32], mask [32, 32]
        (shared by every image and channel), noises [N, nz]. first: the
        first iteration of an epoch (no older memory). rec: a dict that
        receives the fixture tensors (gradients read before each step,
        parameters after it). Returns the losses."""
        torch, c = self.torch, self.c
        F = torch.nn.functional
        if first:
            self.z_old = None
        bce, mse = torch.nn.BCELoss(), torch.nn.MSELoss()
        out = {}

        # Wake
        self.oe.zero_grad(set_to_none=self.set_to_none)
        self.og.zero_grad(set_to_none=self.set_to_none)
        z, d = self.E(x)
        zin = z + c["eps"] * wake_noise if c["eps"] > 0 else z
        xr = self.G(zin)
        l_real = bce(d, torch.ones_like(d))
        m, s = z.mean(0), z.std(0)
        l_kl = torch.mean((s ** 2 + m ** 2) / 2 - torch.log(s) - 0.5)
        l_rec = mse(xr, x)
        # Three backward passes, in the reference's order (the gradients
        # add up in the parameters' .grad).
        if c["R"] > 0:
            l_real.backward(retain_graph=True)
        l_kl.backward(retain_graph=True)
        if c["W"] > 0:
            (c["W"] * l_rec).backward()
        self._record(rec, "wake", self.nets(), after=False)
        self.oe.step()
        self.og.step()
        self._record(rec, "wake", self.nets())
        zd = z.detach()
        out.update(wake_rec=l_rec.item(), wake_kl=l_kl.item(), wake_real=l_real.item(), d_x=d.mean().item(),
                   latent_norm=zd.norm(dim=1).mean().item())
        if rec is not None:
            rec.update({"wake/z": zd.numpy().copy(), "wake/d": d.detach().numpy().copy(),
                        "wake/x_rec": xr.detach().numpy().copy(), "wake/loss_rec": np.array([l_rec.item()]),
                        "wake/loss_kl": np.array([l_kl.item()]), "wake/loss_real": np.array([l_real.item()])})

        # NREM
        self.oe.zero_grad(set_to_none=self.set_to_none)
        zn = zd
        if c["nrem_mix"] and self.z_old is not None:
            zn = 0.5 * zd + 0.5 * self.z_old
        with torch.no_grad():
            dream = self.G(zn) * mask
        zr, _ = self.E(dream)
        l_nrem = mse(zr, zn)
        if c["N"] > 0:
            (c["N"] * l_nrem).backward()
            self._record(rec, "nrem", (("E.", self.E),), after=False)
            self.oe.step()
        self._record(rec, "nrem", (("E.", self.E),))
        out["nrem"] = l_nrem.item()
        if rec is not None:
            rec.update({"nrem/dream": dream.numpy().copy(), "nrem/z_rec": zr.detach().numpy().copy(),
                        "nrem/loss": np.array([l_nrem.item()])})

        # REM
        self.oe.zero_grad(set_to_none=self.set_to_none)
        self.og.zero_grad(set_to_none=self.set_to_none)
        if c["mix"] == "memories" and self.z_old is not None:
            zmix = 0.25 * zd + 0.25 * self.z_old + 0.5 * rem_noise
        else:
            zmix = 0.5 * zd + 0.5 * rem_noise
        xf = self.G(zmix, reverse=True)
        _, df = self.E(xf)
        l_fake = bce(df, torch.zeros_like(df))
        if c["R"] > 0:
            l_fake.backward()
            self._record(rec, "rem", self.nets(), after=False)
            self.oe.step()
            self.og.step()
        self._record(rec, "rem", self.nets())
        out.update(rem_fake=l_fake.item(), d_gz=df.mean().item())
        if rec is not None:
            rec.update({"rem/z_mix": zmix.numpy().copy(), "rem/dream": xf.detach().numpy().copy(),
                        "rem/d": df.detach().numpy().copy(), "rem/loss_fake": np.array([l_fake.item()])})
        self.z_old = zd
        return out


def torch_version():
    import torch
    return f"torch {torch.__version__}, numpy {np.__version__}, python {sys.version.split()[0]}"


# ---------------------------------------------------------------------------
# fixtures


def relerr(a, b):
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    nb = np.linalg.norm(b)
    return np.linalg.norm(a - b) / nb if nb > 0 else np.linalg.norm(a)


def nudge(v, salt):
    """v with every value moved one ulp of its own dtype, up and down
    alternately, as float64."""
    up = (np.arange(v.size).reshape(v.shape) + salt) % 2 == 0
    inf = v.dtype.type(np.inf)
    return np.where(up, np.nextafter(v, inf), np.nextafter(v, -inf)).astype(np.float64)


def make_fixture(channels, replay=None, seed=1, nf=8, nz=16, batch=8, iters=2, perturb=False):
    """Returns (tensors, info, errors): the fixture's tensors, its
    fixtures.json entry and, in replay mode, the relative error of every
    computed tensor against the replayed file. perturb (replay mode) moves
    every replayed input by one float64 ulp first."""
    import torch
    torch.set_default_dtype(torch.float64)
    model = PADTorch(channels, nf, nz)
    tensors = {}
    src = None
    if replay is not None:
        src, _, _ = read_safetensors(replay)
        if perturb:
            src = dict(src)
            for i, k in enumerate(sorted(src)):
                if k.startswith("init/") or k.endswith(("/x", "/noise")):
                    src[k] = nudge(src[k], i)
        params = {k[len("init/"):]: v for k, v in src.items() if k.startswith("init/")}
        model.load(params)
        for k, v in params.items():
            tensors["init/" + k] = v.astype(np.float64)
    else:
        model.init_pad(seed)
        for k, v in model.params().items():
            tensors["init/" + k] = v
        n_img = 8000
        data = training_set(channels, n_img)
        perm = permutation(n_img, Key(seed, STREAM_SHUFFLE, 0))
    occl = []
    for it in range(iters):
        pre = f"it{it}/"
        if src is not None:
            x = src[pre + "x"].astype(np.float64)
            mask3 = src[pre + "mask"].astype(np.float64)
            for ch in range(1, mask3.shape[0]):
                if not np.array_equal(mask3[ch], mask3[0]):
                    raise SystemExit(f"{replay}: {pre}mask: channel {ch} differs from channel 0")
            noise = src[pre + "noise"].astype(np.float64)
        else:
            x = scale(data[perm[it * batch:(it + 1) * batch]]).astype(np.float64)
            mkey = Key(seed, STREAM_NREM_MASK, it)
            plane = occlusion_mask(mkey)[0].astype(np.float64)
            mask3 = np.repeat(plane[None], channels, axis=0)
            noise = Key(seed, STREAM_REM_NOISE, it).normal(batch * nz).reshape(batch, nz).astype(np.float64)
            p, t = occlusion_params(mkey)
            occl.append({"iteration": it, "p": float(p), "tile": int(t)})
        tensors[pre + "x"], tensors[pre + "mask"], tensors[pre + "noise"] = x, mask3, noise
        rec = {}
        model.step(torch.from_numpy(x), torch.from_numpy(mask3[0]), torch.from_numpy(noise), first=(it == 0), rec=rec)
        for k, v in rec.items():
            tensors[pre + k] = np.asarray(v, dtype=np.float64)
    info = {"channels": channels, "nz": nz, "nf": nf, "batch": batch, "iterations": iters, "lr": 0.0002,
            "beta1": 0.5, "beta2": 0.999, "eps": 1e-08, "leaky_slope": 0.2,
            "rem_mix": "iteration 0: 0.5*z + 0.5*noise; later: 0.25*z + 0.25*z_old + 0.5*noise", "dtype": "float64"}
    errors = {}
    if src is not None:
        for k, v in tensors.items():
            if k.startswith("init/") or k.endswith(("/x", "/mask", "/noise")):
                continue
            if k not in src:
                errors[k] = float("inf")
                continue
            errors[k] = relerr(v, src[k])
        for k in src:
            if k not in tensors:
                errors[k] = float("inf")  # the original has it, we do not
    else:
        info["occlusion"] = occl
    return tensors, info, errors


def cmd_fixtures(a):
    os.makedirs(a.out, exist_ok=True)
    infos = {}
    if a.replay and os.path.exists(os.path.join(a.replay, "fixtures.json")):
        with open(os.path.join(a.replay, "fixtures.json")) as f:
            infos = json.load(f)
    worst_all, bad = 0.0, []
    for ch in (1, 3):
        name = f"pad_step_c{ch}.safetensors"
        t0 = time.time()
        replay = os.path.join(a.replay, name) if a.replay else None
        tensors, info, errors = make_fixture(ch, replay=replay, seed=a.seed)
        tol = a.tol
        if replay:
            src_dtype = read_safetensors(replay)[0]["init/E.conv1.0.weight"].dtype
            if src_dtype != np.float64:
                # float32 copies: their outputs are rounded to float32 and
                # their inputs too, so only float32 agreement can be asked.
                tol = max(tol, 1e-4)
                print(f"{name}: the replayed file holds {src_dtype} values: tolerance {tol:g}, floor from float32 ulps")
        floor = {}
        if replay:
            # The float64 floor of each tensor: how far it moves when the
            # inputs move by one ulp. A tensor computed from large
            # cancelling terms (the KL gradient at initialisation, where the
            # batch std of z is ~4e-4 around means ~0.03) cannot be
            # reproduced closer than that by any float64 computation.
            moved, _, _ = make_fixture(ch, replay=replay, seed=a.seed, perturb=True)
            floor = {k: relerr(moved[k], tensors[k]) for k in errors if k in tensors}
        if replay:
            info["occlusion"] = infos.get(name, {}).get("occlusion", [])
        meta = {"generator": "scripts/pad_torch.py fixtures", "generated_with": torch_version(),
                "mode": "replay of " + name + " (initial parameters, x, mask, noise)" if replay else f"pad draws, seed {a.seed}",
                "fixture_info": json.dumps(info, separators=(",", ":"))}
        if replay:
            with open(replay, "rb") as f:
                meta["replayed_sha256"] = hashlib.sha256(f.read()).hexdigest()
        write_safetensors(os.path.join(a.out, name), tensors, meta)
        infos[name] = info
        line = f"{name}: {len(tensors)} tensors, {time.time() - t0:.1f} s"
        if replay:
            w = max(errors, key=errors.get)
            worst_all = max(worst_all, errors[w])
            strict = sum(1 for e in errors.values() if e <= tol)
            line += (f"; {len(errors)} computed tensors, {strict} within {tol:g}, largest relative error "
                     f"{errors[w]:.3g} ({w}, floor {floor.get(w, 0):.3g})")
            for k, e in errors.items():
                if not e <= max(tol, 4 * floor.get(k, 0)):
                    bad.append(f"{name} {k}: relative error {e:.3g}, floor {floor.get(k, 0):.3g}")
        print(line)
        committed = os.path.join(a.committed, name) if a.committed else None
        if committed and os.path.exists(committed):
            # The repository keeps these fixtures rounded to float32
            # (tools/cmd/fixtures32): count the float32 values that
            # differ from ours rounded the same way.
            c32, _, _ = read_safetensors(committed)
            diff = total = 0
            for k, v in c32.items():
                ours = np.asarray(tensors[k], np.float64).astype(np.float32)
                diff += int(np.count_nonzero(ours != v))
                total += v.size
            print(f"    rounded to float32: {total - diff} of {total} values equal to {committed}, {diff} differ")
        if replay and a.verbose:
            for k in sorted(errors, key=errors.get, reverse=True):
                if errors[k] <= tol:
                    break
                print(f"    {errors[k]:.3g}  {k}  (floor {floor.get(k, 0):.3g})")
    with open(os.path.join(a.out, "fixtures.json"), "w") as f:
        json.dump(infos, f, indent=1)
    if a.replay:
        print(f"largest relative error over every computed tensor: {worst_all:.3g}; every tensor within "
              f"the tolerance or 4x its floor: {'yes' if not bad else 'NO'}")
        for b in bad:
            print("  FAIL " + b)
        if bad:
            sys.exit(1)


# ---------------------------------------------------------------------------
# draws: pad's random numbers for the Go cross-check


def net_shapes(c, nf, nz):
    """The parameter tensors of E and G in the reference's order (PyTorch
    layouts: Conv2d [out, in, kh, kw], ConvTranspose2d [in, out, kh, kw])."""
    e = [("conv1.0", (nf, c)), ("conv2.0", (2 * nf, nf)), ("conv3.0", (4 * nf, 2 * nf)), ("conv4.0", (nz, 4 * nf)),
         ("dis.0", (1, 4 * nf))]
    g = [("tconv1.0", (nz, 4 * nf)), ("tconv2.0", (4 * nf, 2 * nf)), ("tconv3.0", (2 * nf, nf)), ("tconv4.0", (nf, c))]
    out = {}
    for net, layers, bias_dim in (("E", e, 0), ("G", g, 1)):
        out[net] = []
        for name, (a, b) in layers:
            out[net] += [(f"{name}.weight", (a, b, 4, 4)), (f"{name}.bias", ((a, b)[bias_dim],))]
    return out


def cmd_draws(a):
    t = {}
    seed = 0x1234_5678_9ABC_DEF0
    # raw Philox: counters and keys with high bits set
    t["philox/words"] = Key(seed, 9, (7 << 32) | 5).words(64).astype(np.int64)
    t["philox/zero"] = Key(0, 0, 0).words(8).astype(np.int64)
    t["uniform"] = Key(seed, 6, 3).uniform(257)
    t["normal"] = Key(seed, STREAM_REM_NOISE, 41).normal(1027)
    # what a run draws: shuffles of a few epochs, masks, noise, init
    for n, epochs in ((725, (0, 1, 2, 3)), (100, (0, 1, 2, 3)), (5, (0, 1))):
        for e in epochs:
            t[f"shuffle/n{n}/e{e}"] = permutation(n, Key(1, STREAM_SHUFFLE, e))
    u8 = lambda m: m.astype(np.uint8)
    for it in (0, 1, 99, 100, 299):
        k = Key(1, STREAM_NREM_MASK, it)
        t[f"mask/it{it}"] = u8(occlusion_mask(k))
        p, tile = occlusion_params(k)
        t[f"mask/it{it}/p"] = np.array([p], dtype=np.float32)
        t[f"mask/it{it}/tile"] = np.array([tile], dtype=np.int64)
        t[f"rem_noise/it{it}"] = Key(1, STREAM_REM_NOISE, it).normal(16 * 16)
        t[f"wake_noise/it{it}"] = Key(1, STREAM_WAKE_NOISE, it).normal(16 * 16)
    # occlusion draws of many iterations: their distribution
    ps, tiles = zip(*(occlusion_params(Key(1, STREAM_NREM_MASK, it)) for it in range(1000)))
    t["mask/p1000"] = np.array(ps, dtype=np.float32)
    t["mask/tile1000"] = np.array(tiles, dtype=np.int64)
    t["mask/per_image"] = u8(occlusion_mask(Key(3, STREAM_NREM_MASK, 7), masks=4))
    t["mask/fixed"] = u8(occlusion_mask(Key(3, STREAM_NREM_MASK, 8), masks=2, p=0.3, tile=4))
    # a mask of another size: edge tiles cut by the border
    t["mask/h20w27"] = u8(occlusion_mask(Key(5, STREAM_NREM_MASK, 1), masks=3, h=20, w=27, max_tile=8))
    for ch in (1, 3):
        shapes = net_shapes(ch, 2, 4)
        e = init_params(shapes["E"], 1, 0)
        g = init_params(shapes["G"], 1, len(shapes["E"]))
        for k, v in e.items():
            t[f"init/c{ch}/E.{k}"] = v
        for k, v in g.items():
            t[f"init/c{ch}/G.{k}"] = v
    gray = embedded_sample(8)
    t["data/gray"] = gray
    t["data/tinted"] = tint(gray)
    write_safetensors(a.out, t, {"generator": "scripts/pad_torch.py draws", "generated_with": numpy_version(),
                                 "init": "nf 2, nz 4, seed 1"})
    print(f"{a.out}: {len(t)} tensors, {os.path.getsize(a.out)} bytes")


def numpy_version():
    return f"numpy {np.__version__}, python {sys.version.split()[0]}"


# ---------------------------------------------------------------------------
# trajectory


def cmd_trajectory(a):
    import torch
    torch.set_default_dtype(torch.float64)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    cond = CONDITIONS[a.condition]
    data = training_set(a.channels, a.images)
    n = data.shape[0]
    xs = scale(data)  # float32, as pad's loader scales
    bpe = n // a.batch  # the last partial batch is dropped
    # pad's backends take LeakyReLU's slope as a float32 (as PyTorch's
    # float32 kernels do): its float64 twin computes with float32(0.2) =
    # 0.20000000298…, so this side does too, unless told otherwise.
    slope = float(np.float32(0.2)) if a.slope == "float32" else float(a.slope)
    model = PADTorch(a.channels, a.nf, a.nz, a.condition, slope=slope, set_to_none=(a.zero_grad == "none"))
    model.init_pad(a.seed)
    if a.nudge:
        # every initial parameter one float64 ulp away: the distance to an
        # unmoved run is the float64 floor of the trajectory
        model.load({k: nudge(v, 0) for k, v in model.params().items()})
    out = {f"param/{0:06d}/{k}": v for k, v in model.params().items()}
    losses = {k: np.zeros(a.iters) for k in LOSSES}
    occ_p, occ_t = np.zeros(a.iters, np.float32), np.zeros(a.iters, np.int64)
    ids_all = np.zeros((a.iters, a.batch), np.int64)
    t0 = time.time()
    perm = None
    for it in range(a.iters):
        epoch, idx = divmod(it, bpe)
        if idx == 0:
            perm = permutation(n, Key(a.seed, STREAM_SHUFFLE, epoch))
        ids = perm[idx * a.batch:(idx + 1) * a.batch]
        ids_all[it] = ids
        x = torch.from_numpy(xs[ids].astype(np.float64))
        mkey = Key(a.seed, STREAM_NREM_MASK, it)
        mask = torch.from_numpy(occlusion_mask(mkey)[0].astype(np.float64))
        occ_p[it], occ_t[it] = occlusion_params(mkey)
        rem = torch.from_numpy(Key(a.seed, STREAM_REM_NOISE, it).normal(a.batch * a.nz).astype(np.float64).reshape(a.batch, a.nz))
        wake = None
        if cond["eps"] > 0:
            wake = torch.from_numpy(Key(a.seed, STREAM_WAKE_NOISE, it).normal(a.batch * a.nz).astype(np.float64).reshape(a.batch, a.nz))
        got = model.step(x, mask, rem, wake, first=(idx == 0))
        for k, v in got.items():
            losses[k][it] = v
        if (it + 1) % a.every == 0 or it + 1 == a.iters:
            for k, v in model.params().items():
                out[f"param/{it + 1:06d}/{k}"] = v
        if a.progress and (it + 1) % a.progress == 0:
            el = time.time() - t0
            print(f"  {a.condition} c{a.channels}: iteration {it + 1}/{a.iters}, {el / (it + 1):.2f} s/it", flush=True)
    for k, v in losses.items():
        out["loss/" + k] = v
    out["occlusion/p"], out["occlusion/tile"], out["batch/ids"] = occ_p, occ_t, ids_all
    meta = {"generator": "scripts/pad_torch.py trajectory", "generated_with": torch_version(),
            "torch_threads": str(torch.get_num_threads()), "leaky_slope": repr(slope), "nudged_init": str(a.nudge), "zero_grad": a.zero_grad,
            "condition": a.condition, "channels": a.channels, "nf": a.nf, "nz": a.nz, "batch": a.batch,
            "images": n, "batches_per_epoch": bpe, "iters": a.iters, "every": a.every, "seed": a.seed,
            "data_sha256": hashlib.sha256(np.ascontiguousarray(data).tobytes()).hexdigest(),
            "seconds": f"{time.time() - t0:.1f}"}
    write_safetensors(a.out, out, meta)
    print(f"{a.out}: {a.condition} c{a.channels} nf {a.nf} nz {a.nz} batch {a.batch}, {n} images ({bpe} batches per epoch), "
          f"{a.iters} iterations in {time.time() - t0:.0f} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fixtures")
    f.add_argument("--replay", help="directory of fixtures whose inputs to replay")
    f.add_argument("--out", required=True)
    f.add_argument("--seed", type=int, default=1)
    f.add_argument("--tol", type=float, default=1e-12)
    f.add_argument("--committed", help="directory of float32 copies to compare with after rounding (testdata/fixtures)")
    f.add_argument("-v", "--verbose", action="store_true")
    d = sub.add_parser("draws")
    d.add_argument("--out", required=True)
    t = sub.add_parser("trajectory")
    t.add_argument("--out", required=True)
    t.add_argument("--condition", default="pad", choices=sorted(CONDITIONS))
    t.add_argument("--channels", type=int, default=3, choices=(1, 3))
    t.add_argument("--nf", type=int, default=64)
    t.add_argument("--nz", type=int, default=256)
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--images", type=int, default=725)
    t.add_argument("--iters", type=int, default=300)
    t.add_argument("--every", type=int, default=50)
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--threads", type=int, default=0)
    t.add_argument("--progress", type=int, default=0, help="print a line every N iterations")
    t.add_argument("--slope", default="float32", help="LeakyReLU slope: float32 (float32(0.2), as pad) or a number")
    t.add_argument("--nudge", action="store_true", help="move every initial parameter by one float64 ulp")
    t.add_argument("--zero-grad", default="none", choices=("none", "zero"),
                   help="none: zero_grad(set_to_none=True), PyTorch 2.x and pad; zero: PyTorch 1.x's default")
    a = ap.parse_args()
    {"fixtures": cmd_fixtures, "draws": cmd_draws, "trajectory": cmd_trajectory}[a.cmd](a)


if __name__ == "__main__":
    main()
