#!/usr/bin/env python3
"""Downscales a binary PPM (P6) by an integer factor with area averaging and
writes it as an 8-bit RGB PNG: each output pixel is the rounded mean of a
factor x factor block, (sum + n/2) // n in integers, so the bytes are the same
on every machine. With "grey", the downscaled pixels become 8-bit grey by the
ITU-R BT.601 luma in integers, (299 R + 587 G + 114 B + 500) // 1000.
With "crop=S", the central S x S pixels of the downscaled image are kept
(offsets rounded down). With "tiles=WxH", the downscaled image is cut into
the whole W x H tiles that fit, row by row from its top-left corner (the
rest of the right and bottom edges dropped), written as OUT_0.png, OUT_1.png,
...: images of several sizes become one size, which png:DIR needs. Standard
library only.

    photos.py IN.ppm OUT.png FACTOR [grey] [crop=S | tiles=WxH]
"""
import struct
import sys
import zlib


def read_ppm(path):
    data = open(path, "rb").read()
    fields, pos = [], 2
    if data[:2] != b"P6":
        sys.exit(f"{path}: not a binary PPM")
    while len(fields) < 3:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(int(data[pos:end]))
        pos = end
    width, height, maxval = fields
    if maxval != 255:
        sys.exit(f"{path}: maxval {maxval}, expected 255")
    pixels = data[pos + 1:pos + 1 + width * height * 3]
    if len(pixels) != width * height * 3:
        sys.exit(f"{path}: truncated")
    return width, height, pixels


def downscale(width, height, pixels, f):
    w, h, n = width // f, height // f, f * f
    row_bytes = width * 3
    out = bytearray()
    for y in range(h):
        # Sum the f input rows of this output row, then f pixels at a time.
        acc = [0] * (w * f * 3)
        for r in range(f):
            start = (y * f + r) * row_bytes
            row = pixels[start:start + w * f * 3]
            acc = [a + b for a, b in zip(acc, row)]
        line = bytearray(w * 3)
        for x in range(w):
            for c in range(3):
                s = sum(acc[(x * f + k) * 3 + c] for k in range(f))
                line[x * 3 + c] = (s + n // 2) // n
        out += line
    return w, h, bytes(out)


def to_grey(rgb):
    return bytes((299 * rgb[i] + 587 * rgb[i + 1] + 114 * rgb[i + 2] + 500) // 1000
                 for i in range(0, len(rgb), 3))


def write_png(path, width, height, rgb, channels=3):
    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body +
                struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    row = width * channels
    raw = b"".join(b"\x00" + rgb[y * row:(y + 1) * row] for y in range(height))
    colour_type = 2 if channels == 3 else 0
    png = (b"\x89PNG\r\n\x1a\n" +
           chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)) +
           chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    with open(path + ".tmp", "wb") as f:
        f.write(png)
    import os
    os.replace(path + ".tmp", path)


def crop_centre(width, height, rgb, side):
    if side > min(width, height):
        sys.exit(f"crop={side}: larger than the {width}x{height} image")
    x0, y0 = (width - side) // 2, (height - side) // 2
    return b"".join(rgb[((y0 + y) * width + x0) * 3:((y0 + y) * width + x0 + side) * 3]
                    for y in range(side))


def tiles(width, height, rgb, tw, th):
    out = []
    for y0 in range(0, height - th + 1, th):
        for x0 in range(0, width - tw + 1, tw):
            out.append(b"".join(rgb[((y0 + y) * width + x0) * 3:((y0 + y) * width + x0 + tw) * 3]
                                for y in range(th)))
    if not out:
        sys.exit(f"tiles={tw}x{th}: larger than the {width}x{height} image")
    return out


def parse_tiles(option):
    parts = option[6:].split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        sys.exit(__doc__)
    return int(parts[0]), int(parts[1])


if __name__ == "__main__":
    options = sys.argv[4:]
    grey = "grey" in options
    crops = [o for o in options if o.startswith("crop=") and o[5:].isdigit()]
    tiling = [parse_tiles(o) for o in options if o.startswith("tiles=")]
    if (len(sys.argv) < 4 or len(options) != grey + len(crops) + len(tiling) or
            len(crops) + len(tiling) > 1):
        sys.exit(__doc__)
    w, h, px = read_ppm(sys.argv[1])
    w, h, px = downscale(w, h, px, int(sys.argv[3]))
    if crops:
        side = int(crops[0][5:])
        px, w, h = crop_centre(w, h, px, side), side, side
    images = [(sys.argv[2], w, h, px)]
    if tiling:
        tw, th = tiling[0]
        stem = sys.argv[2][:-4] if sys.argv[2].lower().endswith(".png") else sys.argv[2]
        images = [(f"{stem}_{k}.png", tw, th, t) for k, t in enumerate(tiles(w, h, px, tw, th))]
    for path, iw, ih, pixels in images:
        if grey:
            write_png(path, iw, ih, to_grey(pixels), channels=1)
        else:
            write_png(path, iw, ih, pixels)
