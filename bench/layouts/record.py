#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Record the layout of a running process for cowbench's fork_real_layout.

Writes which pages of which mappings are present (/proc/PID/maps and bit 63
of /proc/PID/pagemap; root is needed to read pagemap), never their contents,
as run-length text:

    <first page, hex> <pages> <permissions> <name> <gap>+<run> <gap>+<run> ...

one line per mapping that has a present page; each run is <run> present pages
after <gap> absent ones, counted from the mapping's start or the previous
run's end.  Names are file base names, or [heap], [stack], "-" for anonymous.

    python3 bench/layouts/record.py PID DESCRIPTION > bench/layouts/NAME.layout
"""
import os
import platform
import struct
import sys
import time

PAGE = 4096
PRESENT = 1 << 63


def mappings(pid):
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            name = parts[5].strip() if len(parts) > 5 else ""
            yield lo, hi, parts[1], name


def runs(pagemap, lo, hi):
    """(gap, run) pairs of present pages in [lo, hi), read 64 MiB at a time."""
    out, prev_end, start = [], 0, None
    first, last = lo // PAGE, hi // PAGE
    for chunk in range(first, last, 16384):
        n = min(16384, last - chunk)
        pagemap.seek(chunk * 8)
        for k, (entry,) in enumerate(struct.iter_unpack("<Q", pagemap.read(n * 8))):
            i = chunk - first + k
            if entry & PRESENT:
                if start is None:
                    start = i
            elif start is not None:
                out.append((start - prev_end, i - start))
                prev_end, start = i, None
    if start is not None:
        out.append((start - prev_end, last - first - start))
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: record.py PID DESCRIPTION")
    pid, what = int(sys.argv[1]), sys.argv[2]
    lines, maps, present, virtual = [], 0, 0, 0
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for lo, hi, perms, name in mappings(pid):
            virtual += (hi - lo) // PAGE
            if name == "[vsyscall]" or perms.startswith("---"):
                continue  # no page of these is ever present
            r = runs(pagemap, lo, hi)
            if not r:
                continue
            label = os.path.basename(name).replace(" ", "_") if name else "-"
            if name.startswith("["):
                label = name
            maps += 1
            present += sum(n for _, n in r)
            lines.append(f"{lo // PAGE:x} {(hi - lo) // PAGE} {perms} {label} "
                         + " ".join(f"{g}+{n}" for g, n in r))
    print("# SPDX-License-Identifier: BSD-2-Clause")
    print(f"# cowtable layout 1: {what}; recorded {time.strftime('%Y-%m-%d', time.gmtime())}"
          f" on Linux {platform.release()} ({platform.machine()})")
    print(f"# {maps} mappings with present pages, {present} present pages "
          f"of {virtual} mapped")
    print("# first page (hex), pages, permissions, name, then <gap>+<run> of present pages")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
