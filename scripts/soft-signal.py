#!/usr/bin/env python3
"""Soft proxy-set signals vs the counts, on the full substitution's 36 single-cell neighbours.

Usage: soft-signal.py OUT_DIR [--boot N]      (the files scripts/soft-signal.sh writes)

On the benchmark kit's SST-2 BadNet victim the paper's search returns the full substitution
(Q,K,V,O,F,P in all 6 layers). Its search scores a strategy by counts on the two proxy sets: the
fraction of clean rows classified correctly ("acc") and of suspect rows predicted as the
target label 0 ("asr"), combined as score = (1-α)·asr_drop + α·(1-acc_drop) with drops
relative to the victim's figures. Many of the 36 neighbours (the full substitution with one
cell put back to the victim's) score exactly as the full substitution does on those counts,
so the counts cannot tell them apart, although on the test sets some of them are better on
both CACC and ASR (they "dominate" it) and others are worse. Do soft signals of the same
200 + 200 proxy rows see the difference? Each signal is an (acc-like, asr-like) pair scored
with the search's formula:
- count: the search's own (fraction correct on clean rows, fraction predicted 0 on suspect rows);
- prob: mean softmax p(true label) on clean rows, mean p(0) on suspect rows;
- margin: mean logit margin, true minus other on clean rows, logit 0 minus logit 1 on suspect rows;
- clipmargin: the same margins clipped to ±5 per row;
- logprob_abs: mean log p(true label) / mean log p(0), with absolute drops;
- logprob: the same with relative drops. Degenerate, shown as a warning: the victim's
  suspect log-probability is negative (about -0.0006), so a relative drop flips sign and explodes.
The test sets decide only the verdicts (dominates / same / trade-off / dominated, from the test
counts against the full substitution's), never a pick.

Printed: the per-neighbour table (proxy counts, test counts and verdict, soft values, Δscore =
the neighbour's score minus the full's), which neighbours each signal ranks above the full,
its greedy pick over all 36 and over the count-tied ones, Spearman correlations with the test
score (same formula on test counts), AUCs of test-dominating vs the others, and a bootstrap
over the proxy rows (seed 0) of the greedy picks. Everything also goes to OUT_DIR/results.json.
"""
import argparse
import json
import os

import numpy as np

ALPHA = 0.4  # the search's accuracy weight
TARGET = 0  # the attacker's target label: a suspect or poisoned row predicted 0 is a hit
CLIP = 5.0  # per-row clip of the logit margins (clipmargin)
EPS = 1e-12  # "ranked above the full" means a score higher by more than this
SEED = 0  # of the bootstrap's resampling
SIGNALS = ["count", "prob", "margin", "clipmargin", "logprob_abs", "logprob"]
SOFT = ["prob", "margin", "clipmargin", "logprob_abs"]  # the soft signals worth using
ABSOLUTE = {"logprob_abs"}  # signals scored with absolute drops
VERDICTS = ["dominates", "same", "trade-off", "dominated"]
PREFIX = "minus_"  # neighbour strategy names: minus_<layer><module>


def load(preds, name, dataset):
    """Logits and labels of `gms eval --predictions` rows (file order)."""
    with open(os.path.join(preds, f"{name}.{dataset}.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    logits = np.array([r["logits"] for r in rows], dtype=np.float64)
    labels = np.array([r["label"] for r in rows])
    assert (np.array([r["prediction"] for r in rows]) == logits.argmax(1)).all()
    return logits, labels


def softmax(logits):
    z = np.exp(logits - logits.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


def signals(clean, suspect, idx_clean=None, idx_suspect=None):
    """Each signal's (acc-like, asr-like) pair on the proxy sets (rows idx_* of them, if given):
    a higher acc-like value is better accuracy, a lower asr-like value less backdoor."""
    lc, yc = clean
    ls = suspect[0]
    if idx_clean is not None:
        lc, yc = lc[idx_clean], yc[idx_clean]
    if idx_suspect is not None:
        ls = ls[idx_suspect]
    pc, ps = softmax(lc), softmax(ls)
    rows = np.arange(len(yc))
    p_true = pc[rows, yc]
    margin_clean = lc[rows, yc] - lc[rows, 1 - yc]
    margin_suspect = ls[:, TARGET] - ls[:, 1 - TARGET]
    logprob = (np.log(p_true).mean(), np.log(ps[:, TARGET]).mean())
    return {
        "count": ((lc.argmax(1) == yc).mean(), (ls.argmax(1) == TARGET).mean()),
        "prob": (p_true.mean(), ps[:, TARGET].mean()),
        "margin": (margin_clean.mean(), margin_suspect.mean()),
        "logprob": logprob,
        "logprob_abs": logprob,
        "clipmargin": (np.clip(margin_clean, -CLIP, CLIP).mean(), np.clip(margin_suspect, -CLIP, CLIP).mean()),
    }


def score(value, victim, absolute=False):
    """The search's score of an (acc, asr) pair against the victim's."""
    (acc, asr), (acc0, asr0) = value, victim
    if absolute:
        acc_drop, asr_drop = acc0 - acc, asr0 - asr
    else:
        acc_drop, asr_drop = (acc0 - acc) / acc0, (asr0 - asr) / asr0
    return (1 - ALPHA) * asr_drop + ALPHA * (1 - acc_drop)


def verdict(t, t_full):
    """Test counts (clean ok, clean n, poison hits, poison n) against the full substitution's."""
    if t[0] == t_full[0] and t[2] == t_full[2]:
        return "same"
    if t[0] >= t_full[0] and t[2] <= t_full[2]:
        return "dominates"
    if t[0] <= t_full[0] and t[2] >= t_full[2]:
        return "dominated"
    return "trade-off"


def spearman(a, b):
    """Rank correlation; ties ranked by position, so it means nothing over exactly tied values."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def md_row(cells):
    """A markdown table row; an empty cell is written `| |`."""
    return "|" + "|".join(f" {c} " if c != "" else " " for c in cells) + "|"


def auc(pos, neg):
    return float(np.mean([(p > q) + 0.5 * (p == q) for p in pos for q in neg]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--boot", type=int, default=400, help="bootstrap resamples (default 400)")
    args = ap.parse_args()
    preds = os.path.join(args.out_dir, "preds")
    with open(os.path.join(args.out_dir, "strategies", "full.json")) as f:
        full = json.load(f)
    neigh = [f"{PREFIX}{layer}{module}" for layer, module in full["cells"]]
    names = ["victim", "full"] + neigh

    def cell(n):
        return n[len(PREFIX):]

    proxy = {n: (load(preds, n, "clean"), load(preds, n, "suspect")) for n in names}

    def compute(idx_clean=None, idx_suspect=None):
        sig = {n: signals(*proxy[n], idx_clean, idx_suspect) for n in names}
        sc = {n: {s: score(sig[n][s], sig["victim"][s], s in ABSOLUTE) for s in SIGNALS} for n in names}
        return sig, sc

    def test_counts(n):
        (lc, yc), (lb, _) = load(preds, n, "test_clean"), load(preds, n, "test_badnet")
        return int((lc.argmax(1) == yc).sum()), len(yc), int((lb.argmax(1) == TARGET).sum()), len(lb)

    sig, sc = compute()
    tc = {n: test_counts(n) for n in names}
    ver = {n: verdict(tc[n], tc["full"]) for n in neigh}

    def tscore(n):
        """The same formula on the test counts, against the victim's (interpretation only)."""
        v = tc["victim"]
        return score((tc[n][0] / tc[n][1], tc[n][2] / tc[n][3]), (v[0] / v[1], v[2] / v[3]))

    def dscore(n, s):
        return sc[n][s] - sc["full"][s]

    def proxy_counts(n):
        (lc, _), (ls, _) = proxy[n]
        return int(round(sig[n]["count"][0] * len(lc))), int(round(sig[n]["count"][1] * len(ls)))

    n_clean, n_suspect = len(proxy["full"][0][0]), len(proxy["full"][1][0])
    for n in ["victim", "full"]:
        print(f"{n:6s} test: CACC {tc[n][0]}/{tc[n][1]}  ASR {tc[n][2]}/{tc[n][3]}")
    for n in ["victim", "full"]:
        print(f"{n:6s} (acc-like, asr-like, score): " + "  ".join(
            f"{s} {sig[n][s][0]:.4f} {sig[n][s][1]:.4f} {sc[n][s]:.4f}" for s in SIGNALS))

    # (1) The table.
    hdr = ("cell", f"clean ok/{n_clean}", f"susp hits/{n_suspect}", "Δscore count",
           f"test clean ok/{tc['full'][1]}", f"test poison hits/{tc['full'][3]}", "verdict vs full",
           "Δtest score", "p_true clean", "p0 susp", "Δscore prob", "margin clean", "margin susp",
           "Δscore margin", "Δscore clipmargin", "Δscore logprob(abs)")
    md = [md_row(hdr), "|" + "---|" * len(hdr)]
    for n in ["full", "victim"]:
        s, d = sig[n], ("0" if n == "full" else "")
        md.append(md_row(["**full**" if n == "full" else n, *proxy_counts(n), d, tc[n][0], tc[n][2],
                          "—" if n == "full" else "", d, f"{s['prob'][0]:.4f}", f"{s['prob'][1]:.4f}", d,
                          f"{s['margin'][0]:.3f}", f"{s['margin'][1]:.3f}", d, d, d]))
    rows = []
    for n in neigh:
        s = sig[n]
        clean_ok, suspect_hits = proxy_counts(n)
        row = dict(cell=cell(n), clean_correct=clean_ok, suspect_hits=suspect_hits, test=tc[n], verdict=ver[n],
                   signals={k: [float(s[k][0]), float(s[k][1])] for k in SIGNALS},
                   dscore={k: float(dscore(n, k)) for k in SIGNALS},
                   dtest_score=float(tscore(n) - tscore("full")))
        rows.append(row)
        ds = row["dscore"]
        md.append(md_row([cell(n), clean_ok, suspect_hits, f"{ds['count']:+.4f}", tc[n][0], tc[n][2], ver[n],
                          f"{row['dtest_score']:+.4f}", f"{s['prob'][0]:.4f}", f"{s['prob'][1]:.4f}",
                          f"{ds['prob']:+.5f}", f"{s['margin'][0]:.3f}", f"{s['margin'][1]:.3f}",
                          f"{ds['margin']:+.5f}", f"{ds['clipmargin']:+.5f}", f"{ds['logprob_abs']:+.5f}"]))
    table = "\n".join(md)
    print(table)

    tied = [n for n in neigh if sig[n]["count"] == sig["full"]["count"]]
    dom = [n for n in neigh if ver[n] == "dominates"]
    dominated = [n for n in neigh if ver[n] == "dominated"]
    print("\ncount-tied neighbours:", [cell(n) for n in tied])
    print("test-dominating:", [cell(n) for n in dom], " of which count-tied:", [cell(n) for n in dom if n in tied])
    print("test-dominated:", [cell(n) for n in dominated])
    print("verdict counts:", {v: sum(1 for n in neigh if ver[n] == v) for v in VERDICTS})
    print("verdicts among count-tied:", {v: sum(1 for n in tied if ver[n] == v) for v in VERDICTS})

    # (2) Who each signal ranks above the full substitution, and (3) its greedy step.
    summary = {}
    for s in SIGNALS:
        above = [n for n in neigh if dscore(n, s) > EPS]
        best = max(neigh, key=lambda n: sc[n][s])
        best_t = max(tied, key=lambda n: sc[n][s])
        summary[s] = dict(
            above=[cell(n) for n in above],
            dom_above=[cell(n) for n in dom if n in above],
            dominated_above=[cell(n) for n in dominated if n in above],
            tradeoff_above=[cell(n) for n in above if ver[n] == "trade-off"],
            same_above=[cell(n) for n in above if ver[n] == "same"],
            tied_above=[cell(n) for n in tied if n in above],
            greedy=cell(best), greedy_gain=float(dscore(best, s)), greedy_verdict=ver[best],
            greedy_tied=cell(best_t), greedy_tied_gain=float(dscore(best_t, s)), greedy_tied_verdict=ver[best_t],
        )
        m = summary[s]
        print(f"\n[{s}] above full: {len(above)}  dominating above: {len(m['dom_above'])}/{len(dom)} {m['dom_above']}"
              f"  dominated above (FP): {len(m['dominated_above'])}/{len(dominated)} {m['dominated_above']}"
              f"  trade-off above: {m['tradeoff_above']}  same above: {m['same_above']}")
        print(f"    among count-tied: above {m['tied_above']}")
        for what, b in (("all 36", best), ("count-tied", best_t)):
            print(f"    greedy over {what}: {cell(b)} Δ{dscore(b, s):+.5f} -> {ver[b]} test {tc[b]}"
                  f" Δtestscore {tscore(b) - tscore('full'):+.4f}")

    dtest = np.array([tscore(n) - tscore("full") for n in neigh])
    tied_idx = [neigh.index(n) for n in tied]
    print("\nSpearman(Δsoft score, Δtest score) over 36 / over count-tied:")
    corr = {}
    for s in SIGNALS:
        d = np.array([dscore(n, s) for n in neigh])
        corr[s] = (spearman(d, dtest), spearman(d[tied_idx], dtest[tied_idx]))
        print(f"  {s:10s} {corr[s][0]:+.3f}  {corr[s][1]:+.3f}")

    print("\nAUC, among the count-tied, of test-dominating vs the other count-tied neighbours"
          " (1 = perfect, 0.5 = chance):")
    def split(value):  # among the count-tied: (dominating, the others)
        return ([value(n) for n in tied if ver[n] == "dominates"],
                [value(n) for n in tied if ver[n] != "dominates"])

    aucs = {}
    for s in ["count"] + SOFT:
        aucs[s] = (auc(*split(lambda n: sc[n][s])), auc(*split(lambda n: sig[n][s][0])),
                   auc(*split(lambda n: -sig[n][s][1])))
        print(f"  {s:12s} score {aucs[s][0]:.2f}   clean component {aucs[s][1]:.2f}   suspect component {aucs[s][2]:.2f}")
    print("AUC over all 36, dominating vs dominated:",
          {s: round(auc([sc[n][s] for n in dom], [sc[n][s] for n in dominated]), 2) for s in SIGNALS})

    # Bootstrap over the proxy rows: where does the greedy step land (its test verdict, or
    # "none" when nothing scores above the full), over all 36 and with counts first (only
    # among the neighbours count-tied in that resample)? And how often does each count-tied
    # neighbour score above the full?
    rng = np.random.default_rng(SEED)
    boot = {s: dict.fromkeys(VERDICTS + ["none"], 0) for s in SIGNALS}
    boot_t = {s: dict.fromkeys(VERDICTS + ["none"], 0) for s in SIGNALS}
    pos_frac = {s: dict.fromkeys(tied, 0) for s in SIGNALS}
    for _ in range(args.boot):
        idx_clean = rng.integers(0, n_clean, n_clean)
        idx_suspect = rng.integers(0, n_suspect, n_suspect)
        sg, scb = compute(idx_clean, idx_suspect)
        tied_b = [n for n in neigh if sg[n]["count"] == sg["full"]["count"]]
        for s in SIGNALS:
            for n in tied:
                pos_frac[s][n] += scb[n][s] > scb["full"][s] + EPS
            best = max(neigh, key=lambda n: scb[n][s])
            boot[s][ver[best] if scb[best][s] > scb["full"][s] + EPS else "none"] += 1
            best_t = max(tied_b, key=lambda n: scb[n][s]) if tied_b else None
            boot_t[s][ver[best_t] if best_t and scb[best_t][s] > scb["full"][s] + EPS else "none"] += 1
    print(f"\nBootstrap ({args.boot} resamples of both proxy sets): verdict of the greedy soft step")
    for s in SIGNALS:
        print(f"  {s:10s} all36: {boot[s]}   count-tied only: {boot_t[s]}")
    print("\nBootstrap P(Δsoft score > 0) for each count-tied neighbour:")
    frac = {s: {cell(n): pos_frac[s][n] / args.boot for n in tied} for s in SIGNALS}
    for n in tied:
        print(f"  {cell(n):3s} {ver[n]:10s} test {tc[n][0]}/{tc[n][2]} "
              + "  ".join(f"{s}:{frac[s][cell(n)]:.2f}" for s in SOFT))

    results = dict(
        alpha=ALPHA, rows=rows, auc_tied=aucs, boot_pos_frac=frac, table=table,
        tied=[cell(n) for n in tied], dominating=[cell(n) for n in dom], dominated=[cell(n) for n in dominated],
        summary=summary, spearman=corr, boot=args.boot, boot_seed=SEED, bootstrap=boot, bootstrap_tied=boot_t,
        full={"test": tc["full"], "signals": {k: [float(x) for x in sig["full"][k]] for k in SIGNALS},
              "score": sc["full"]},
        victim={"test": tc["victim"], "signals": {k: [float(x) for x in sig["victim"][k]] for k in SIGNALS}})
    path = os.path.join(args.out_dir, "results.json")
    with open(path + ".part", "w") as f:
        json.dump(results, f, indent=1, default=float)
    os.replace(path + ".part", path)


if __name__ == "__main__":
    main()
