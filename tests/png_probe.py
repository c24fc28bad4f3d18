#!/usr/bin/env python3
"""What a browser screenshot shows, for test_report: the pictures in it and
how many pixels have given colours.  Standard library only (zlib).

usage: png_probe.py SHOT.png [#rrggbb ...]
Prints one JSON object: width, height, colours ({"#rrggbb": pixels}) and
pictures: [x, y, w, h] boxes of photo-like areas (many distinct, saturated
colours over at least 64x48 px), top to bottom, left to right.
"""
import json
import struct
from collections import Counter
import sys
import zlib

TILE = 8


def decode(path):
    """8-bit RGB or RGBA, not interlaced (what Chromium writes) -> rows of RGB tuples."""
    with open(path, 'rb') as f:
        data = f.read()
    if data[:8] != b'\x89PNG\r\n\x1a\n':
        sys.exit('%s: not a PNG' % path)
    pos, idat, head = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b'IHDR':
            head = struct.unpack('>IIBBBBB', body)
        elif kind == b'IDAT':
            idat.append(body)
        pos += 12 + n
    width, height, depth, ctype, _, _, interlace = head
    if depth != 8 or ctype not in (2, 6) or interlace:
        sys.exit('%s: unsupported PNG (depth %d, colour type %d)' % (path, depth, ctype))
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(b''.join(idat)), width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(width)])
        prev = line
    return width, height, rows


def pictures(width, height, rows):
    """Boxes of 8x8 tiles that look like a photograph, joined when they touch."""
    tw, th = width // TILE, height // TILE
    photo = [[False] * tw for _ in range(th)]
    for ty in range(th):
        for tx in range(tw):
            px = [rows[ty * TILE + y][tx * TILE + x] for y in range(TILE) for x in range(TILE)]
            spread = sum(max(p) - min(p) for p in px) / len(px)
            photo[ty][tx] = len(set(px)) >= 12 and spread >= 40
    seen, boxes = set(), []
    for ty in range(th):
        for tx in range(tw):
            if not photo[ty][tx] or (tx, ty) in seen:
                continue
            stack, x0, y0, x1, y1 = [(tx, ty)], tx, ty, tx, ty
            seen.add((tx, ty))
            while stack:
                x, y = stack.pop()
                x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
                for nx, ny in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
                    if 0 <= nx < tw and 0 <= ny < th and photo[ny][nx] and (nx, ny) not in seen:
                        seen.add((nx, ny))
                        stack.append((nx, ny))
            box = [x0 * TILE, y0 * TILE, (x1 - x0 + 1) * TILE, (y1 - y0 + 1) * TILE]
            if box[2] >= 64 and box[3] >= 48:
                boxes.append(box)
    return sorted(boxes, key=lambda b: (b[1], b[0]))


def main():
    width, height, rows = decode(sys.argv[1])
    want = {c.lower(): tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in sys.argv[2:]}
    every = Counter(p for row in rows for p in row)
    counts = {name: every[rgb] for name, rgb in want.items()}
    json.dump({'width': width, 'height': height, 'colours': counts,
               'pictures': pictures(width, height, rows)}, sys.stdout)
    print()


if __name__ == '__main__':
    main()
