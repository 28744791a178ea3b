#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Writes the hand-made seeds of tests/fuzz/corpus (seed-*), one scenario each,
in the byte format fuzz_cowtable.c decodes (README.md).  Run from anywhere:
    python3 tests/fuzz/make_seeds.py
Inputs the fuzzer found and that were merged into the corpus are not touched.
"""
import os
import sys

# Operation codes (low 4 bits of the op byte); bits 4-5: context slot; 6-7: flags.
MARK, RELEASE, LOOKUP, MARK_RANGE, RELEASE_RANGE, FOREACH = 0, 1, 2, 3, 4, 5
MARK_REPEAT, CTX_GET, CTX_PUT, RECLAIM, BARRIER = 8, 9, 10, 11, 12
FAIL_AT, FAIL_RATE, CHECK = 13, 14, 15

# Anchors (the first address byte's low 3 bits).
ZERO, BLOCK5, MID, G4, USER_TOP, P2_40, SIGN, TOP = range(8)
# Misalignment (the first address byte's bits 3-7 = 28 + m): +1, +8, +PAGE/2, +PAGE-1.

# Frames: < 0x80 small (b & 7); 0x80-0xef the page's own frame if tracked;
# 0xf0 + i the special frames: 0 FRAME_MAX, 1 FRAME_MAX-1, 2 FRAME_MAX+1, 3 ~0, ...
OWN = 0x80
FRAME_MAX, FRAME_TOO_BIG, FRAME_ALL_ONES = 0xF0, 0xF2, 0xF3


def op(code, slot=0, flags=0):
    return bytes([code | slot << 4 | flags << 6])


def addr(anchor, delta=0, mis=None):
    a = anchor | ((28 + mis) << 3 if mis is not None else 0)
    return bytes([a, delta & 0xFF])


def mark(a, frame=1, slot=0):
    return op(MARK, slot) + a + bytes([frame])


def mark_repeat(a, frame, times, slot=0):
    return op(MARK_REPEAT, slot) + a + bytes([frame, times - 1])


def release(a, slot=0, null_frame=False):
    return op(RELEASE, slot, 1 if null_frame else 0) + a


def lookup(a, slot=0, null_frame=False, null_refs=False):
    return op(LOOKUP, slot, (1 if null_frame else 0) | (2 if null_refs else 0)) + a


def mark_range(a, n, pattern=2, base=1, poke=None, null_frames=False, null_marked=False, slot=0):
    """pattern bit 0: tracked pages get their own frame; bit 1: base + i, else base."""
    # Size class: 0-255 pages, 256 + (0-255), or n with bits 8-11 in bits 2-5.
    sb = 0 if n < 256 else 2 if n < 512 else 3 | (n >> 8) << 2
    sb |= (0x40 if null_frames else 0) | (0x80 if null_marked else 0)
    out = op(MARK_RANGE, slot) + a + bytes([n & 0xFF, sb, pattern, base])
    if poke is None:
        return out + bytes([0])
    index, frame = poke
    return out + bytes([index << 1 | 1, frame])


def bounds(start, pages=None, scale=0, off=0, end=None, to_top=False, whole=False):
    """pages: end = start + (pages << 2*scale) pages + (0, 1, PAGE/2, PAGE-1)[off]."""
    if whole:
        return bytes([3 | 4, 0]) + start
    if to_top:
        return bytes([2, 0]) + start
    if end is not None:
        return bytes([1, 0]) + start + end
    return bytes([0 | scale << 2 | off << 4, pages]) + start


LAST_NONE, LAST_RECORD, LAST_CALL_IN = 0, 1, 2


def release_range(b, callback=LAST_RECORD, slot=0):
    return op(RELEASE_RANGE, slot) + b + bytes([callback])


def foreach(b, visit=LAST_RECORD, stop=0, slot=0):
    return op(FOREACH, slot) + b + bytes([visit | stop << 2])


def ctx_get(slot):
    return op(CTX_GET, slot)


def ctx_put(slot):
    return op(CTX_PUT, slot)


def reclaim(slot=0):
    return op(RECLAIM, slot)


def barrier(slot=0):
    return op(BARRIER, slot)


def fail_at(k):
    return op(FAIL_AT) + bytes([k])


def fail_rate(k):
    return op(FAIL_RATE) + bytes([k])


def check(end=False):
    return op(CHECK, 0, 1 if end else 0)


P = addr(MID, 0)  # a page in the middle of a block
Q = addr(MID, 5)  # another page of the same block
R = addr(MID, 9)  # a third

SEEDS = {
    # Share, refuse another frame, release down to LAST, then NOT_COW.
    "single": mark(P, 1) + mark(P, OWN) + mark(P, 2) + lookup(P) + release(P) + release(P)
    + release(P) + release(P) + lookup(P),
    # Pages on either side of block edges, and the first and last slot of a block.
    "block_edges": b"".join(mark(addr(BLOCK5, d), d & 7) for d in (-65, -64, -1, 0, 63, 64))
    + b"".join(lookup(addr(BLOCK5, d)) for d in (-64, -1, 0, 1, 63, 64))
    + b"".join(release(addr(BLOCK5, d)) for d in (-1, 0, 63, 64, -1, 0, 63, 64)) + check(),
    # Page 0 and the top page of the address space (reached from two anchors).
    "top_and_zero": mark(addr(ZERO, 0), 1) + mark(addr(ZERO, -1), 2) + mark(addr(TOP, 127), OWN)
    + lookup(addr(TOP, 127)) + lookup(addr(ZERO, -1)) + foreach(bounds(addr(ZERO, 0), whole=True))
    + release_range(bounds(addr(TOP, 126), to_top=True)) + check()
    + release_range(bounds(addr(ZERO, 0), whole=True)),
    # Every anchor, one mark each, then everything released by one walk.
    "anchors": b"".join(mark(addr(a, d), a) for a in range(8) for d in (-1, 0, 1))
    + check() + release_range(bounds(addr(ZERO, 0), whole=True))
    + release_range(bounds(addr(ZERO, 0), whole=True), LAST_NONE),
    # A range across blocks, shared again, walked, released from the middle of a page.
    "ranges": mark_range(addr(MID, -40), 300) + mark_range(addr(MID, -10), 100, pattern=1)
    + foreach(bounds(addr(MID, -50), 64, scale=1), stop=20)
    + release_range(bounds(addr(MID, -20, mis=2), 40, off=2))
    + foreach(bounds(addr(MID, -128), end=addr(MID, 127))) + check()
    + release_range(bounds(addr(MID, -128), 255, scale=1)),
    # More than four leaves: several sections per range; released in two passes.
    "long_range": mark_range(addr(BLOCK5, -100), 1000, pattern=0, base=3)
    + release_range(bounds(addr(BLOCK5, -128), 64, scale=2))
    + release_range(bounds(addr(BLOCK5, -128), 64, scale=2)),
    # Allocation failure: a new leaf, then the second leaf of a range, then at random.
    "enomem": fail_at(0) + mark(P, 1) + mark(P, 1) + mark(addr(BLOCK5, 0), 1) + fail_at(1)
    + mark_range(addr(G4, -30), 100) + mark_range(addr(G4, -30), 100) + check() + fail_rate(3)
    + b"".join(mark(addr(USER_TOP, 64 * i - 128), 2) for i in range(4)) + ctx_get(1)
    + ctx_get(2) + fail_rate(0) + fail_at(0xFF) + mark_range(addr(SIGN, 0), 130),
    # One page up to the count limit of the refs-5 variant, and past it.
    "refs": mark_repeat(P, 1, 8) + lookup(P) + mark(P, 1) + release(P) + mark(P, OWN)
    + mark_repeat(Q, 4, 3) + mark(Q, 5) + check(),
    # EINVAL everywhere: misaligned, frames too large, no context, wrapping ranges.
    "einval": mark(addr(MID, 0, mis=0), 1) + mark(addr(MID, 0, mis=3), 1) + release(addr(MID, 1, mis=1))
    + lookup(addr(MID, 0, mis=2)) + mark(P, FRAME_TOO_BIG) + mark(P, FRAME_ALL_ONES) + mark(P, FRAME_MAX)
    + mark(P, 0xF1) + mark(P, FRAME_MAX) + mark(P, 3, slot=2) + release(P, slot=3) + lookup(P, slot=1)
    + mark_range(addr(TOP, 100), 100) + mark_range(addr(TOP, 100), 28) + mark_range(addr(ZERO, -1), 2)
    + mark_range(P, 0) + mark_range(P, 10, null_frames=True) + mark_range(P, 70, poke=(69, FRAME_TOO_BIG))
    + mark_range(P, 10, slot=2) + release_range(bounds(P, 0)) + release_range(bounds(P, end=addr(MID, -3)))
    + foreach(bounds(P, 10), visit=0) + foreach(bounds(P, 10), slot=3) + check(),
    # Callbacks calling back into the table: each LAST and each visit runs the next call.
    "callbacks": mark_range(addr(MID, -60), 130) + mark(addr(MID, -60), OWN)
    + release_range(bounds(addr(MID, -64), 200), LAST_NONE)
    + release_range(bounds(addr(MID, -64), 200), LAST_CALL_IN)
    + mark(addr(MID, -60), 7) + lookup(addr(MID, -59)) + release(addr(MID, 69)) + mark(addr(MID, 70), 2)
    + mark_range(addr(MID, -61), 10) + release(addr(MID, -60)) + foreach(bounds(addr(MID, -70), 5, scale=1))
    + release_range(bounds(addr(MID, -128), 255, scale=1))
    + foreach(bounds(addr(ZERO, 0), whole=True), LAST_CALL_IN)
    + release(addr(MID, -59)) + lookup(addr(MID, 30)) + ctx_get(1) + barrier(1) + reclaim(0)
    + release_range(bounds(addr(ZERO, 0), whole=True)),
    # A callback's callback: three levels deep.
    "nested": mark_range(addr(BLOCK5, -4), 8) + mark_range(addr(BLOCK5, 100), 3)
    + release_range(bounds(addr(BLOCK5, 100), 3), LAST_NONE)
    + release_range(bounds(addr(BLOCK5, -4), 8), LAST_NONE)
    + release_range(bounds(addr(BLOCK5, -4), 8), LAST_CALL_IN)
    + release_range(bounds(addr(BLOCK5, 100), 3), LAST_CALL_IN)
    + mark(addr(BLOCK5, -4), 1) + lookup(addr(BLOCK5, 0)) + release(addr(BLOCK5, 101))
    + mark(addr(BLOCK5, -3), 2) + foreach(bounds(addr(BLOCK5, -10), 20), LAST_CALL_IN)
    + mark_range(addr(BLOCK5, -2), 10) + release(addr(BLOCK5, -4)) + release(addr(BLOCK5, 2))
    + check(),
    # Contexts taken, put back and reused; reclaim and barrier on each.
    "contexts": ctx_get(1) + mark(P, 1, slot=1) + ctx_get(2) + mark(P, OWN, slot=2) + ctx_put(1)
    + ctx_get(3) + release(P, slot=3) + reclaim(3) + barrier(2) + ctx_put(0) + ctx_put(2)
    + ctx_put(3) + ctx_get(0) + lookup(P) + release(P) + ctx_get(1) + ctx_get(2) + ctx_get(3)
    + check(),
    # A leaf dies with its last page and is born again for the same block.
    "leaf_reborn": mark(P, 1) + release(P) + release(P) + mark(P, 2) + lookup(P) + release(P)
    + release(P) + reclaim() + mark(P, 3) + release(P) + release(P) + barrier() + mark(P, 4),
    # Two pages of one block: one dies, the other stays; an empty slot in a live leaf.
    "two_in_block": mark(P, 1) + mark(Q, 2) + lookup(Q) + release(R) + release(Q) + release(Q)
    + lookup(P) + release(R) + mark(R, 3) + lookup(R) + check(),
    # Pages left tracked: cowtable_fini() frees live leaves (the sequence ends at the check).
    "fini_live": mark_range(addr(BLOCK5, -100), 300) + mark(addr(ZERO, -1), 1) + mark(P, 2)
    + ctx_get(1) + mark(Q, 3, slot=1) + check(end=True) + mark(R, 4),
    # 192 leaves die at once: more than a context's cache of freed leaves holds.
    "cache_full": mark_range(addr(ZERO, 0), 4095) + mark_range(addr(G4, 0), 4095)
    + mark_range(addr(SIGN, 0), 4095) + release_range(bounds(addr(ZERO, 0), whole=True), LAST_NONE)
    + release_range(bounds(addr(ZERO, 0), whole=True)) + barrier() + check(),
    # Leaves killed inside a walk, many times over, with and without callbacks.
    "walk_kills": b"".join(mark_range(addr(G4, 0), 256) + release_range(bounds(addr(G4, 0), 255, scale=0), LAST_NONE)
                           + release_range(bounds(addr(G4, 0), 64, scale=1)) for _ in range(3))
    + check(),
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(SEEDS.items()):
        with open(os.path.join(out, "seed-" + name), "wb") as f:
            f.write(data)
    print(f"{len(SEEDS)} seeds in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
