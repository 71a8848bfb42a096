#!/usr/bin/env python3
"""Counts the SASS instructions one warp issues along one path through a kernel (a static estimate of what
Nsight Compute calls executed instructions, for a kernel whose hot path is known).

Usage: sass-hot-path.py SASS KERNEL [ADDR ...] [ADDR=N ...]
  SASS    the output of `cuobjdump -sass file.cubin`
  KERNEL  a substring of the mangled kernel name (the first function that contains it)
  ADDR    hex address of a conditional branch taken on this path (default: not taken)
  ADDR=N  a conditional branch taken N times, then not (a loop's back edge: N = iterations - 1)
Conditional branches are not taken unless listed, or unless they follow a comparison of a register with 2
(`ISETP.NE.AND P0, PT, Rn, 0x2, PT`, then `@!P0 BRA`): the activation switch's clip case (RI_CU_ACT_CLIP
is 2) in the depthwise kernels. Unconditional branches are followed; predicated-off instructions count
(a warp issues them); the walk ends at an unpredicated EXIT, or stops at an indirect branch or call.
Prints the count and the most frequent opcodes."""
import collections
import re
import sys


def load(path, kernel):
    out, on = [], False
    for line in open(path):
        if "Function :" in line:
            on = kernel in line and not out
            continue
        m = re.match(r"\s+/\*([0-9a-f]{4,6})\*/\s+(.*?)\s*;", line)
        if on and m:
            out.append((int(m.group(1), 16), m.group(2)))
    return out


def walk(ins, taken, loops):
    index = {a: i for i, (a, _) in enumerate(ins)}
    clip = re.compile(r"ISETP\.NE\.AND P0, PT, R\d+, 0x2, PT")
    ops, i, n = collections.Counter(), 0, 0
    while i < len(ins):
        a, text = ins[i]
        words = text.split()
        pred = words[0].startswith("@")
        op = words[1] if pred else words[0]
        n += 1
        ops[op.split(".")[0]] += 1
        if op == "EXIT" and not pred:
            break
        if op in ("BRX", "CALL.REL.NOINC", "CALL"):
            print(f"stopped at {op} 0x{a:x}")
            break
        if op == "BRA":
            go = not pred
            if pred and a in loops and loops[a] > 0:
                loops[a] -= 1
                go = True
            elif pred and (a in taken or (words[0] == "@!P0" and any(clip.search(ins[j][1]) for j in (i - 1, i - 2)))):
                go = True
            if go:
                i = index[int(re.search(r"0x([0-9a-f]+)", text).group(1), 16)]
                continue
        i += 1
    return n, ops


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    ins = load(sys.argv[1], sys.argv[2])
    if not ins:
        sys.exit(f"no function containing {sys.argv[2]}")
    taken, loops = set(), {}
    for arg in sys.argv[3:]:
        if "=" in arg:
            a, k = arg.split("=")
            loops[int(a, 16)] = int(k)
        else:
            taken.add(int(arg, 16))
    n, ops = walk(ins, taken, loops)
    print(n, " ".join(f"{k}:{v}" for k, v in ops.most_common(16)))


if __name__ == "__main__":
    main()
