#!/usr/bin/env bash
# Do soft proxy-set signals rank the full substitution's single-cell neighbours the way the test
# sets do? On the benchmark kit's SST-2 BadNet victim (sst2_badnet, donor sst2_proxy_uci) the
# paper's search returns the full substitution (36 cells); of its 36 neighbours (one cell put
# back), 11 score exactly as it does on the proxy-set counts, yet some of them beat it on both
# test sets. This script records every row's logits so that scripts/soft-signal.py can compare
# soft signals (probabilities, margins, log-probabilities) with the counts:
#   1. gms search on the kit's proxy sets and test sets   → OUT/strategies/full.json
#   2. the 36 strategies with one cell removed            → OUT/strategies/minus_<layer><module>.json
#   3. gms apply of each (to OUT/tmp-model, removed after) and gms eval --predictions on the two
#      proxy sets and the two test sets, then the victim  → OUT/preds/<name>.<set>.jsonl (+ .json)
#   4. scripts/soft-signal.py OUT                         → the report on stdout, OUT/results.json
# Progress and the search's log go to stderr.
# Resumable: a finished strategy, prediction file or search is not redone (files are written to
# .part and moved into place; an interrupted search resumes from its journal). About 6-7 minutes
# on 2 cores (CPU, f32), 9 s per strategy.
#
# Usage: scripts/soft-signal.sh [OUT_DIR]      (default target/soft-signal), from the repo root.
# Environment: GMS (default target/release/gms), KIT (the benchmark kit, default ../shared/bench),
# MODELS (where the kit's setup.sh assembled sst2_badnet and sst2_proxy_uci, default
# target/bench-models), PYTHON (default ${GMS_PYTHON:-python3}; needs numpy), DEVICE (default
# cpu: the predictions the report was written from), BOOT (bootstrap resamples, default 400).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-target/soft-signal}
GMS=${GMS:-target/release/gms}
KIT=${KIT:-../shared/bench}
MODELS=${MODELS:-target/bench-models}
PYTHON=${PYTHON:-${GMS_PYTHON:-python3}}
DEVICE=${DEVICE:-cpu}
BOOT=${BOOT:-400}
VICTIM=$MODELS/sst2_badnet
PROXY=$MODELS/sst2_proxy_uci
PROXYSETS=$KIT/proxysets/sst2_badnet
TESTSETS=$KIT/data/sst2
STRATEGIES=$OUT/strategies
PREDS=$OUT/preds
TMP_MODEL=$OUT/tmp-model
# name:file of the four evaluated sets; the names are the ones soft-signal.py reads.
SETS=("clean:$PROXYSETS/clean.jsonl" "suspect:$PROXYSETS/suspect.jsonl"
    "test_clean:$TESTSETS/test_clean.json" "test_badnet:$TESTSETS/test_badnet.json")

log() { echo "soft-signal: $*" >&2; }
die() {
    log "$*"
    exit 2
}

# ---------------------------------------------------------------------------------------------
# Inputs: one line naming what is missing and how to get it.
for f in "$PROXYSETS/clean.jsonl" "$PROXYSETS/suspect.jsonl" "$TESTSETS/test_clean.json" "$TESTSETS/test_badnet.json"; do
    [[ -f $f ]] || die "$f is missing: set KIT=DIR to the benchmark kit (the folder with proxysets/ and data/)"
done
for m in "$VICTIM" "$PROXY"; do
    [[ -f $m/config.json ]] || die "$m is missing: run $KIT/setup.sh $MODELS (or set MODELS=DIR)"
done
[[ -x $GMS ]] || die "$GMS is missing: cargo build --release (or set GMS=path/to/gms)"
"$PYTHON" -c 'import numpy' 2>/dev/null ||
    die "$PYTHON cannot import numpy: set PYTHON (or GMS_PYTHON) to a python with numpy"

mkdir -p "$STRATEGIES" "$PREDS"
trap 'rm -rf "$TMP_MODEL"' EXIT

# ---------------------------------------------------------------------------------------------
# 1. The paper's search (α 0.4, patience 5: gms's defaults); its answer is the full substitution.
JOURNAL=$OUT/search.journal.jsonl
if [[ ! -s $STRATEGIES/full.json ]]; then
    search_in=(--victim "$VICTIM" --proxy "$PROXY" --clean "$PROXYSETS/clean.jsonl"
        --suspect "$PROXYSETS/suspect.jsonl" --test-clean "$TESTSETS/test_clean.json"
        --test-poison "$TESTSETS/test_badnet.json")
    search_in+=(--journal "$JOURNAL")
    [[ -s $JOURNAL ]] && search_in=(--resume "$JOURNAL")
    log "gms search ${search_in[0]} … (log: $OUT/search.log)"
    "$GMS" search "${search_in[@]}" --device "$DEVICE" --out "$STRATEGIES/full.json.part" 2>&1 |
        tee "$OUT/search.log" >&2
    mv "$STRATEGIES/full.json.part" "$STRATEGIES/full.json"
fi

# 2. The neighbours: full.json with one cell removed, origin manual, an empty trace, `modules`
#    and `layers` recomputed as every module and layer still used. The other fields stay the
#    full substitution's (they document the search it came from; gms apply reads only `cells`
#    and `num_layers`).
"$PYTHON" - "$STRATEGIES" <<'PY'
import json, os, sys
folder = sys.argv[1]
full = json.load(open(os.path.join(folder, "full.json")))
order = full["module_order"]
for cell in full["cells"]:
    cells = [c for c in full["cells"] if c != cell]
    s = dict(full, origin="manual", cells=cells, trace=[],
             modules=[m for m in order if any(c[1] == m for c in cells)],
             layers=sorted({c[0] for c in cells}))
    path = os.path.join(folder, f"minus_{cell[0]}{cell[1]}.json")
    with open(path + ".part", "w") as f:
        json.dump(s, f, indent=2)
        f.write("\n")
    os.replace(path + ".part", path)
PY

# ---------------------------------------------------------------------------------------------
# 3. Per-row predictions. complete NAME: all four prediction files are there.
complete() {
    local set
    for set in "${SETS[@]}"; do
        [[ -s $PREDS/$1.${set%%:*}.jsonl ]] || return 1
    done
}

evaluate() { # MODEL_DIR NAME
    local set name file
    for set in "${SETS[@]}"; do
        name=${set%%:*} file=${set#*:}
        [[ -s $PREDS/$2.$name.jsonl ]] && continue
        "$GMS" eval --model "$1" --data "$file" --device "$DEVICE" --json \
            --predictions "$PREDS/$2.$name.jsonl.part" >"$PREDS/$2.$name.json.part"
        mv "$PREDS/$2.$name.json.part" "$PREDS/$2.$name.json"
        mv "$PREDS/$2.$name.jsonl.part" "$PREDS/$2.$name.jsonl"
    done
}

start=$SECONDS
strategies=("$STRATEGIES"/full.json "$STRATEGIES"/minus_*.json)
i=0
for s in "${strategies[@]}"; do
    i=$((i + 1))
    name=$(basename "$s" .json)
    complete "$name" && continue
    rm -rf "$TMP_MODEL"
    "$GMS" apply --victim "$VICTIM" --proxy "$PROXY" --strategy "$s" --out "$TMP_MODEL" >/dev/null
    evaluate "$TMP_MODEL" "$name"
    rm -rf "$TMP_MODEL"
    log "$name ($i/${#strategies[@]}, $((SECONDS - start)) s)"
done
if ! complete victim; then
    evaluate "$VICTIM" victim
    log "victim ($((SECONDS - start)) s)"
fi

# ---------------------------------------------------------------------------------------------
# 4. The analysis.
"$PYTHON" scripts/soft-signal.py "$OUT" --boot "$BOOT"
