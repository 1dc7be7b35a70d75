#!/usr/bin/python3
# Writes pil_resize.bin: reference outputs of PIL's Image.resize(..., BILINEAR)
# for TestResizeMatchesPIL, on pseudo-random uint8 images of assorted sizes
# (up- and down-scaling, one axis only, 1 and 3 channels).
#
# Run from dataset/testdata with Debian's python3-pil (Pillow 9.4):
#   /usr/bin/python3 pil_resize.py
#
# Format, little-endian: b"PILR", uint32 case count; per case uint16 c, h, w,
# oh, ow, then c*h*w input bytes (CHW) and c*oh*ow output bytes (CHW).
import random
import struct
from PIL import Image

cases = [
    (1, 28, 28, 32, 32),
    (1, 45, 37, 32, 32),
    (1, 100, 7, 32, 32),
    (1, 5, 3, 32, 32),
    (1, 64, 64, 32, 32),
    (1, 33, 31, 32, 32),
    (1, 96, 96, 32, 32),
    (1, 17, 250, 32, 32),
    (1, 28, 28, 28, 32),
    (1, 28, 28, 32, 28),
    (1, 1, 1, 32, 32),
    (1, 32, 32, 7, 5),
    (3, 50, 70, 32, 32),
    (3, 28, 28, 32, 32),
    (3, 13, 64, 32, 32),
]
rnd = random.Random(20220101)
out = [b"PILR", struct.pack("<I", len(cases))]
for c, h, w, oh, ow in cases:
    # smooth-ish content with noise, so both flat and busy regions occur
    planes = []
    for ch in range(c):
        p = bytes(
            max(0, min(255, int(127 + 120 * ((x * (ch + 1) + 2 * y) % 37 - 18) / 18) + rnd.randint(-40, 40)))
            for y in range(h)
            for x in range(w)
        )
        planes.append(p)
    if c == 1:
        im = Image.frombytes("L", (w, h), planes[0])
    else:
        inter = bytes(planes[k][i] for i in range(h * w) for k in range(3))
        im = Image.frombytes("RGB", (w, h), inter)
    r = im.resize((ow, oh), Image.BILINEAR)
    if c == 1:
        res = r.tobytes()
    else:
        b = r.tobytes()
        res = b"".join(b[k::3] for k in range(3))
    out.append(struct.pack("<5H", c, h, w, oh, ow))
    out.append(b"".join(planes))
    out.append(res)
open("pil_resize.bin", "wb").write(b"".join(out))
