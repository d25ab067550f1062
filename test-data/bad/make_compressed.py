#!/usr/bin/env python3
"""Makes the compressed cases of the bad-input corpus (run from this folder; deterministic).

truncated_gzip.cov.gz   a gzip member cut in the middle of its deflate data
truncated_bgzf.bed.gz   a BGZF file cut inside its second block (no end-of-file marker)
corrupt_gzip_crc.dss.gz a complete gzip member whose CRC-32 does not match its data
"""
import gzip
import struct
import zlib

# Deterministic pseudo-random counts, so that the deflate stream is not trivially short.
def counts(i):
    n = 5 + (i * 7919) % 23
    return n, (i * 104729) % (n + 1)

cov = "".join(
    f"chr1\t{100 + 20 * i}\t{100 + 20 * i}\t{100 * m / n}\t{m}\t{n - m}\n"
    for i in range(400)
    for n, m in [counts(i)]
).encode()
gz = gzip.compress(cov, mtime=0)
with open("truncated_gzip.cov.gz", "wb") as f:
    f.write(gz[: len(gz) // 2])


def bgzf_block(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    raw = c.compress(data) + c.flush()
    bsize = 12 + 6 + len(raw) + 8  # header + extra + data + trailer
    header = struct.pack("<BBBBIBBHBBHH", 0x1F, 0x8B, 8, 4, 0, 0, 0xFF, 6, ord("B"), ord("C"), 2, bsize - 1)
    return header + raw + struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF)


def modkit(i):
    n, m = counts(i)
    p = 100 + 20 * i
    return f"chr1\t{p}\t{p + 1}\tm\t{n}\t+\t{p}\t{p + 1}\t255,0,0\t{n} {100 * m / n:.2f} {m} {n - m} 0 0 0 0 0\n"


text = "".join(modkit(i) for i in range(300)).encode()
half = len(text) // 2
blocks = bgzf_block(text[:half]) + bgzf_block(text[half:])
eof = bgzf_block(b"")
assert len(eof) == 28
full = blocks + eof
cut = len(bgzf_block(text[:half])) + 40
with open("truncated_bgzf.bed.gz", "wb") as f:
    f.write(full[:cut])

dss = ("chr\tpos\tN\tX\n" + "".join(f"chr1\t{101 + 20 * i}\t{counts(i)[0]}\t{counts(i)[1]}\n" for i in range(100))).encode()
gz = bytearray(gzip.compress(dss, mtime=0))
gz[-8] ^= 0xFF  # first byte of the CRC-32
with open("corrupt_gzip_crc.dss.gz", "wb") as f:
    f.write(bytes(gz))
