#!/usr/bin/env bash
# Regenerates the embedded demo in assets/demo/ from the UCI "Sentiment Labelled Sentences"
# corpus (assets/demo/corpus/, CC BY 4.0) with gms's own commands:
#   gms train (proxy, from scratch) → gms poison (BadNet) → gms train (victim, from the proxy)
#   → gms poison --test → gms proxy-sets → gms search/eval (recorded in metrics.json).
# Deterministic (seeded, CPU). A few minutes on 2 cores. Usage: scripts/make-demo.sh
# (GMS=path/to/gms to use an already built binary; WORK=dir for the intermediate files).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${GMS:-}" ]]; then
    cargo build --release --quiet
    GMS=target/release/gms
fi
WORK=${WORK:-target/demo-work}
DEMO=assets/demo
CORPUS=$DEMO/corpus/uci_sentiment.jsonl
SEED=42
TARGET=1

rm -rf "$WORK"
mkdir -p "$WORK"

# 1. A fixed split of the 3,000 rows (the file cycles IMDB, Yelp, Amazon in blocks of 1,000,
#    so every fifth row keeps the sources and labels balanced): row 5k → test (600),
#    5k+1 and 5k+3 → the proxy's clean data (1,200), 5k+2 and 5k+4 → the victim's data (1,200).
awk -v W="$WORK" '{ r = (NR - 1) % 5
    if (r == 0) print > (W "/test_clean.jsonl")
    else if (r == 1 || r == 3) print > (W "/proxy_train.jsonl")
    else print > (W "/victim_clean.jsonl") }' "$CORPUS"

# 2. The proxy: a 6-layer BERT trained from scratch, with a WordPiece vocabulary trained on the
#    same rows, on clean data the victim's trainer never sees.
"$GMS" train --config "$DEMO/config.json" --data "$WORK/proxy_train.jsonl" --out "$WORK/proxy" \
    --epochs 4 --lr 1e-3 --seed $SEED --device cpu

# 3. The victim: 20% of its data BadNet-poisoned towards label 1 (positive), and trained from
#    the proxy. In the paper victim and proxy are both fine-tuned from one public pretrained
#    checkpoint; no checkpoint this small exists, so the proxy plays that part too (the attacker
#    fine-tunes a public clean model; the defender uses that model as the donor). Embeddings
#    stay fixed, as in the benchmark kit's recipe.
"$GMS" poison --attack badnet --in "$WORK/victim_clean.jsonl" --out "$WORK/victim_train.jsonl" \
    --rate 0.2 --target $TARGET --seed $SEED
"$GMS" train --base "$WORK/proxy" --data "$WORK/victim_train.jsonl" --out "$WORK/victim" \
    --epochs 6 --lr 1e-3 --freeze-embeddings --seed $SEED --device cpu

# 4. The ASR test set and the proxy sets (suspect rows ranked by the victim's training record).
"$GMS" poison --attack badnet --in "$WORK/test_clean.jsonl" --out "$WORK/test_poison.jsonl" \
    --target $TARGET --seed 7 --test
"$GMS" proxy-sets --victim "$WORK/victim" --train "$WORK/victim_train.jsonl" --out "$WORK" \
    --size 200 --seed $SEED --device cpu

# 5. Into assets/ (models without their training record, which only proxy-sets needs).
for m in victim proxy; do
    rm -rf "${DEMO:?}/$m"
    mkdir -p "$DEMO/$m"
    cp "$WORK/$m/config.json" "$WORK/$m/tokenizer.json" "$WORK/$m/model.safetensors" "$DEMO/$m/"
done
cp "$WORK"/{clean,suspect,test_clean,test_poison}.jsonl "$DEMO/"

# 6. Record what the demo shows: the paper's search (α 0.4, patience 5) on the assets, and the
#    proxy on the same test sets. tests/demo.rs checks that the assets reproduce these numbers.
"$GMS" search --device cpu --victim "$DEMO/victim" --proxy "$DEMO/proxy" \
    --clean "$DEMO/clean.jsonl" --suspect "$DEMO/suspect.jsonl" \
    --test-clean "$DEMO/test_clean.jsonl" --test-poison "$DEMO/test_poison.jsonl" \
    --out "$WORK/search.json"
proxy_clean=$("$GMS" eval --device cpu --json --model "$DEMO/proxy" --data "$DEMO/test_clean.jsonl")
proxy_poison=$("$GMS" eval --device cpu --json --model "$DEMO/proxy" --data "$DEMO/test_poison.jsonl")
printf '{"search": %s,\n "proxy_test_clean": %s,\n "proxy_test_poison": %s}\n' \
    "$(cat "$WORK/search.json")" "$proxy_clean" "$proxy_poison" > "$DEMO/metrics.json"
du -sh "$DEMO"/victim "$DEMO"/proxy "$DEMO"
echo "done: rebuild gms (cargo build) to embed the new assets"
