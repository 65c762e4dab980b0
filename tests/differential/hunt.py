"""Bug hunt at scale: many programs, grouped into distinct bugs, each shrunk to a minimum.

    .venv/bin/python tests/differential/hunt.py 3000 [--ops MODE] [--seed S] [--max-seconds T]
        [--out report.txt]

pytest (test_differential.py) stops at the first bug and shrinks it; this script keeps
going: it draws N programs (no shrinking), groups the differences by their signature (the
kind of difference and the op that made the value), then shrinks one program per group
greedily (drop instructions and leaves, zero fields, smaller shapes) while the signature
stays the same, and prints every group's minimal reproducer.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from hypothesis import HealthCheck, given, seed, settings  # noqa: E402

import difftest  # noqa: E402


def outcome(prog) -> tuple[str, str]:
    """(signature, message): ("", "") when remotegrad agrees with PyTorch."""
    try:
        difftest.check(prog)
    except difftest.Mismatch as m:
        return m.signature, str(m)
    except Exception:  # noqa: BLE001  (a harness error is a group too)
        tb = traceback.format_exc()
        return "HARNESS " + tb.strip().splitlines()[-1], tb
    return "", ""


def _variants(prog):
    """Smaller programs, most aggressive first."""
    rep = dataclasses.replace
    ins, leaves = list(prog.instrs), list(prog.leaves)
    for i in reversed(range(len(ins))):
        yield rep(prog, instrs=tuple(ins[:i] + ins[i + 1:]))
    if prog.grad:
        yield rep(prog, grad=0)
        if prog.grad == 3:
            yield rep(prog, grad=2)
        if prog.grad >= 2:
            yield rep(prog, grad=1)
    if prog.targets:
        yield rep(prog, targets=())
    if prog.k:
        yield rep(prog, k=0)
    for i in reversed(range(len(leaves))):
        if len(leaves) > 1:
            yield rep(prog, leaves=tuple(leaves[:i] + leaves[i + 1:]))
    for i, leaf in enumerate(leaves):
        def with_leaf(new, i=i):
            return rep(prog, leaves=tuple(leaves[:i] + [new] + leaves[i + 1:]))
        for d in range(len(leaf.shape)):
            yield with_leaf(rep(leaf, shape=leaf.shape[:d] + leaf.shape[d + 1:]))
            if leaf.shape[d] > 1:
                yield with_leaf(rep(leaf, shape=leaf.shape[:d] + (1,) + leaf.shape[d + 1:]))
        if leaf.kind:
            yield with_leaf(rep(leaf, kind=0))
        if leaf.seed:
            yield with_leaf(rep(leaf, seed=0))
        if leaf.dtype != "main":
            yield with_leaf(rep(leaf, dtype="main"))
    if prog.dtype != "float32":
        yield rep(prog, dtype="float32")
    for i, one in enumerate(ins):
        def with_ins(new, i=i):
            return rep(prog, instrs=tuple(ins[:i] + [new] + ins[i + 1:]))
        for f in ("a", "b", "c"):
            if getattr(one, f):
                yield with_ins(rep(one, **{f: 0}))
        if one.ng:
            yield with_ins(rep(one, ng=False))
        if not one.dom:
            yield with_ins(rep(one, dom=True))


def shrink(prog, sig, budget=250):
    tries = 0
    changed = True
    while changed and tries < budget:
        changed = False
        for cand in _variants(prog):
            tries += 1
            if outcome(cand)[0] == sig:
                prog, changed = cand, True
                break
            if tries >= budget:
                break
    return prog


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int, nargs="?", default=1000)
    ap.add_argument("--ops", choices=["all", "loss", "second", "views", "views-second"],
                    default="all", help="which programs: difftest's OP_NAMES, LOSS_OPS, "
                    "second-order gradients, VIEW_OPS (in place through views), both")
    ap.add_argument("--seed", type=int, default=None,
                    help="hypothesis seed (the same programs again); default: random")
    ap.add_argument("--max-seconds", type=float, default=None,
                    help="stop drawing programs after this long (then shrink what differed)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import remotegrad as rg
    rg.connect(os.environ.get("REMOTEGRAD_TEST_CLUSTER") or "local")
    import logging
    logging.disable(logging.ERROR)
    strat = {"all": difftest.programs(), "loss": difftest.programs(ops=difftest.LOSS_OPS),
             "second": difftest.programs(grad=3, max_instrs=5),
             "views": difftest.programs(ops=difftest.VIEW_OPS),
             "views-second": difftest.programs(ops=difftest.VIEW_OPS, grad=3, max_instrs=6),
             }[args.ops]
    groups: dict[str, list] = collections.defaultdict(list)
    counts = collections.Counter()
    t0 = time.time()

    @settings(max_examples=args.n, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck), phases=["generate"])
    @given(strat)
    def run(prog):
        if args.max_seconds is not None and time.time() - t0 > args.max_seconds:
            counts["not run (--max-seconds)"] += 1
            return
        sig, _ = outcome(prog)
        counts["ok" if not sig else "differs"] += 1
        if sig:
            groups[sig].append(prog)

    if args.seed is not None:
        run = seed(args.seed)(run)
    run()
    gen_time = time.time() - t0
    out = [f"{sum(counts.values())} programs in {gen_time:.0f}s: {dict(counts)}; "
           f"{len(groups)} signatures; skipped {dict(difftest.SKIPPED)}"]
    if difftest.GATED:
        out.append("avoided: reported remotegrad differences not generated (difftest.GATES; "
                   "REMOTEGRAD_DIFF_ENABLE=<gate> generates them):\n" + difftest.gated_summary())
    if difftest.MET:
        out.append(f"enabled gates met (generated): {dict(difftest.MET)}")
    if difftest.KNOWN_SEEN:
        out.append("known differences (difftest.KNOWN; counted, not failed):\n"
                   + difftest.known_summary())
    for sig, progs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        smallest = min(progs, key=lambda p: (len(p.instrs), len(p.leaves)))
        small = shrink(smallest, sig)
        _, msg = outcome(small)
        out.append(f"\n\n######## [{len(progs)} programs] {sig}\n{msg}")
    out.append(f"\n(total {time.time() - t0:.0f}s)")
    text = "\n".join(out)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
