#!/usr/bin/env python3
"""Makes the BAM cases of the bad-input corpus from SAM text (run from this folder; deterministic,
no external data, standard library only: BAM records and BGZF blocks are encoded by hand
following the SAM/BAM specification, sections 4.1-4.2).

no_mod_tags.bam     an aligned BAM whose records carry neither MM/ML nor Bismark XM tags
bad_ml_length.bam   record 2 has an ML array shorter than its MM tag needs
no_index.bam        a valid, coordinate-sorted modified-base BAM without a .bai/.csi beside it

bad_mm_syntax.sam (SAM text, written by hand) is the malformed-MM case in SAM form.
"""
import struct
import zlib

SEQ = "ACGTACGTACGTACGTACGT"  # C at 0-based 1, 5, 9, 13, 17
QUAL = "I" * len(SEQ)
HEADER = "@HD\tVN:1.6\tSO:coordinate\n@SQ\tSN:chr1\tLN:1000\n"
REFS = [("chr1", 1000)]
GOOD = "MM:Z:C+m?,0,0,0,0,0;\tML:B:C,250,250,10,10,250"


def sam(name, pos, tags, flag=0):
    return f"{name}\t{flag}\tchr1\t{pos}\t60\t{len(SEQ)}M\t*\t0\t0\t{SEQ}\t{QUAL}\t{tags}"


def reg2bin(beg, end):
    end -= 1
    for shift, offset in ((14, 4681), (17, 585), (20, 73), (23, 9), (26, 1)):
        if beg >> shift == end >> shift:
            return offset + (beg >> shift)
    return 0


def tag_bytes(tag):
    key, kind, value = tag.split(":", 2)
    if kind == "Z":
        return key.encode() + b"Z" + value.encode() + b"\0"
    if kind == "i":
        return key.encode() + b"i" + struct.pack("<i", int(value))
    if kind == "B" and value.startswith("C,"):
        vals = [int(v) for v in value[2:].split(",")]
        return key.encode() + b"BC" + struct.pack("<i", len(vals)) + bytes(vals)
    raise ValueError(tag)


def record(line):
    f = line.split("\t")
    name, flag, pos, mapq, cigar, seq, qual = f[0], int(f[1]), int(f[3]) - 1, int(f[4]), f[5], f[9], f[10]
    ops, num = [], ""
    for c in cigar:
        if c.isdigit():
            num += c
        else:
            ops.append((int(num), "MIDNSHP=X".index(c)))
            num = ""
    ref_len = sum(n for n, op in ops if op in (0, 2, 3, 7, 8))
    codes = {b: i for i, b in enumerate("=ACMGRSVTWYHKDBN")}
    packed = bytearray()
    for i in range(0, len(seq), 2):
        hi = codes[seq[i]] << 4
        lo = codes[seq[i + 1]] if i + 1 < len(seq) else 0
        packed.append(hi | lo)
    body = struct.pack(
        "<iiBBHHHIiii",
        0, pos, len(name) + 1, mapq, reg2bin(pos, pos + ref_len), len(ops), flag, len(seq), -1, -1, 0,
    )
    body += name.encode() + b"\0"
    body += b"".join(struct.pack("<I", n << 4 | op) for n, op in ops)
    body += bytes(packed) + bytes(ord(q) - 33 for q in qual)
    body += b"".join(tag_bytes(t) for t in f[11:])
    return struct.pack("<i", len(body)) + body


def bgzf_block(data):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    raw = c.compress(data) + c.flush()
    bsize = 12 + 6 + len(raw) + 8
    header = struct.pack("<BBBBIBBHBBHH", 0x1F, 0x8B, 8, 4, 0, 0, 0xFF, 6, ord("B"), ord("C"), 2, bsize - 1)
    return header + raw + struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data))


def write_bam(path, lines):
    data = b"BAM\1" + struct.pack("<i", len(HEADER)) + HEADER.encode() + struct.pack("<i", len(REFS))
    for name, length in REFS:
        data += struct.pack("<i", len(name) + 1) + name.encode() + b"\0" + struct.pack("<i", length)
    data += b"".join(record(line) for line in lines)
    with open(path, "wb") as fh:
        fh.write(bgzf_block(data) + bgzf_block(b""))


write_bam("no_mod_tags.bam", [sam(f"r{i}", 10 * i + 1, "NM:i:0") for i in range(1, 4)])
write_bam(
    "bad_ml_length.bam",
    [sam("r1", 11, GOOD), sam("r2", 21, "MM:Z:C+m?,0,0,0,0,0;\tML:B:C,250,250"), sam("r3", 31, GOOD)],
)
write_bam("no_index.bam", [sam(f"r{i}", 10 * i + 1, GOOD) for i in range(1, 4)])
