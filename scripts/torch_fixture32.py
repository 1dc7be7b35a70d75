"""Replays pad's golden fixtures with PyTorch in float32.

The fixtures (testdata/fixtures/pad_step_c*.safetensors) record two full
Wake/NREM/REM iterations computed by PyTorch autograd in float64. This
script runs the same two iterations in float32 — on the CPU and, when
available, on the GPU with TF32 off — and prints how far PyTorch's own
float32 results are from its float64 ones, tensor by tensor. It is the
yardstick for pad's float32 parity: a tensor that float32 PyTorch cannot
reproduce to 1e-4 is limited by float32, not by pad.

Usage: python3 scripts/torch_fixture32.py [testdata/fixtures]
"""
import sys

import torch
import torch.nn as nn

# The model (with its gradient reversal) and the safetensors reader come
# from pad_torch.py, next to this script, so that Debian's python3-torch
# (no safetensors package) runs it; importing it leaves no __pycache__.
sys.dont_write_bytecode = True
from pad_torch import read_safetensors, torch_modules  # noqa: E402

Encoder, Generator = torch_modules(0.2)


def load_file(path):
    """{name: tensor} of a safetensors file, in the file's dtypes."""
    return {k: torch.from_numpy(v) for k, v in read_safetensors(path)[0].items()}


def kl(z):
    m, s = z.mean(0), z.std(0)
    return torch.mean((s ** 2 + m ** 2) / 2 - torch.log(s) - 0.5)


def replay(fx, c, nf, nz, dev):
    t = lambda k: fx[k].to(dev, torch.float32)
    e, g = Encoder(c, nf, nz).to(dev), Generator(c, nf, nz).to(dev)
    with torch.no_grad():
        for prefix, net in (("E.", e), ("G.", g)):
            for name, p in net.named_parameters():
                p.copy_(t("init/" + prefix + name))
    oe = torch.optim.Adam(e.parameters(), lr=2e-4, betas=(0.5, 0.999))
    og = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce, mse = nn.BCELoss(), nn.MSELoss()
    got = {}

    def rec(pre, phase, nets):
        for prefix, net in nets:
            for name, p in net.named_parameters():
                if p.grad is not None:
                    got[f"{pre}{phase}/grad/{prefix}{name}"] = p.grad.detach().clone()
                got[f"{pre}{phase}/after/{prefix}{name}"] = p.detach().clone()

    z_old = None
    for it in range(2):
        pre = f"it{it}/"
        x, mask, noise = t(pre + "x"), t(pre + "mask"), t(pre + "noise")
        oe.zero_grad(); og.zero_grad()
        z, d = e(x)
        xr = g(z)
        l_real, l_kl, l_rec = bce(d, torch.ones_like(d)), kl(z), mse(xr, x)
        (l_real + l_kl + l_rec).backward()
        # gradients are read before the step, parameters after it
        grads = {}
        oe.step(); og.step()
        for k, v in {"wake/z": z, "wake/d": d, "wake/x_rec": xr, "wake/loss_real": l_real, "wake/loss_kl": l_kl, "wake/loss_rec": l_rec}.items():
            got[pre + k] = v.detach().reshape(-1)
        rec(pre, "wake", (("E.", e), ("G.", g)))
        zd = z.detach()

        oe.zero_grad()
        with torch.no_grad():
            dream = g(zd) * mask
        zr, _ = e(dream)
        l_nrem = mse(zr, zd)
        l_nrem.backward()
        oe.step()
        got[pre + "nrem/dream"], got[pre + "nrem/z_rec"], got[pre + "nrem/loss"] = dream.reshape(-1), zr.detach().reshape(-1), l_nrem.detach().reshape(-1)
        rec(pre, "nrem", (("E.", e),))

        oe.zero_grad(); og.zero_grad()
        zmix = 0.5 * zd + 0.5 * noise if z_old is None else 0.25 * zd + 0.25 * z_old + 0.5 * noise
        xf = g(zmix, reverse=True)
        _, df = e(xf)
        l_fake = bce(df, torch.zeros_like(df))
        l_fake.backward()
        oe.step(); og.step()
        got[pre + "rem/z_mix"], got[pre + "rem/dream"], got[pre + "rem/d"], got[pre + "rem/loss_fake"] = zmix.reshape(-1), xf.detach().reshape(-1), df.detach().reshape(-1), l_fake.detach().reshape(-1)
        rec(pre, "rem", (("E.", e), ("G.", g)))
        z_old = zd
    return got


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "testdata/fixtures"
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    devs = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for c in (1, 3):
        fx = load_file(f"{root}/pad_step_c{c}.safetensors")
        for dev in devs:
            got = replay(fx, c, 8, 16, dev)
            errs = {}
            for k, v in got.items():
                if k not in fx:
                    continue
                ref = fx[k].double().reshape(-1)
                v = v.double().cpu().reshape(-1)
                errs[k] = ((v - ref).norm() / ref.norm().clamp_min(1e-300)).item()
            n = len(errs)
            ok = sum(1 for e in errs.values() if e <= 1e-4)
            worst = max(errs, key=errs.get)
            print(f"torch float32 c{c} {dev}: {ok}/{n} tensors within 1e-4 of the float64 fixture; worst {errs[worst]:.3g} at {worst}")
            for k in sorted(errs, key=errs.get, reverse=True)[:5]:
                print(f"    {errs[k]:.3g}  {k}")


if __name__ == "__main__":
    main()
