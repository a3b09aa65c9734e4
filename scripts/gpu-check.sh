#!/usr/bin/env bash
# The checks that matter on CUDA, run on the lent GPU with the binary from scripts/build-cuda.sh:
# golden logits of the benchmark kit, the kit search reproducing the reference trace, a training
# smoke test, and the benchmarks (kit search; BERT-large-shaped full greedy walk in f32 and bf16).
# Every result is appended to target/gpu-check/results.jsonl; a short table is printed last.
#
#   scripts/gpu-check.sh prepare   here: stage the kit files to carry, print the two device calls
#   scripts/gpu-check.sh large     device, call 1: BERT-large walk f32 + bf16, CUDA training
#   scripts/gpu-check.sh kit       device, call 2: golden logits, kit search trace, kit benchmarks
#   scripts/gpu-check.sh llm       device, call 2 (after kit) or 3: a 7B-shaped Llama + LoRA pair
#   scripts/gpu-check.sh all       large, kit and llm (when everything is on the machine)
#   scripts/gpu-check.sh table     print the table of the results so far
#
# Why two calls: a device call carries at most 64 MiB (docs/gpu.md §Carrying). The gzipped binary
# (~15 MB) + the kit's shared embeddings shard (~24 MB) + two model bodies (~22 MB each) do not
# fit together. Call 1 carries the binary and the kit's tokenizer, embeddings, proxy sets, test
# sets and golden logits (target/gpu-kit/a) and generates the BERT-large pair on the device with
# `gms gen-model` (no transfer); call 2, on the same warm machine (ignored files stay between
# calls), carries only the two model bodies (target/gpu-kit/b). Run call 2 right after call 1:
# a machine released in between comes back bare, and the script then says what is missing.
#
# Run with the `run` tool from the repository root, e.g.
#   call 1: carry ["target/cuda/gms.gz", "target/gpu-kit/a"], command "scripts/gpu-check.sh large",
#           timeout_s 420
#   call 2: carry ["target/gpu-kit/b"], command "scripts/gpu-check.sh kit", timeout_s 300
# With $OUT set (the run tool sets it), the results (*.jsonl, strategy.json, log) are copied there.
#
# The LLM kit itself does not travel: its SmolLM2 base is 270 MB in bf16 (93 MB even as the GGUF
# it is rebuilt from), over the limit of a call. The decoder rows come from a random-weight pair
# of the 7B shape that `gms gen-model --arch llama` writes on the device (no transfer), evaluated
# on the LLM kit's proxy sets (staged in part a, a few hundred KB): time per evaluation, and peak
# GPU memory sampled with nvidia-smi every 200 ms while `gms bench --llm-shape` runs.
#
# Environment: GMS=path of an unpacked gms (default: unpack target/cuda/gms.gz); DEVICE (default
# cuda); LARGE_SHAPE (gen-model shape flags; default BERT-large: 24 layers, hidden 1024, 16 heads,
# FFN 4096) so the same script runs on the CPU with a tiny shape:
#   GMS=target/debug/gms DEVICE=cpu LARGE_SHAPE="--layers 2 --hidden 64 --heads 4 --intermediate 128" \
#       scripts/gpu-check.sh all
# LLM_SHAPE (gen-model flags of the decoder pair; default: gen-model's 7B shape, hidden 4096,
# 32 layers, 32/8 heads, SwiGLU 14336, vocabulary 32000, r 8), e.g. on the CPU:
#   LLM_SHAPE="--layers 2 --hidden 64 --heads 4 --kv-heads 2 --intermediate 128 --vocab-size 512"
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${1:-all}
KIT_SRC=${KIT:-../shared/bench}
LLM_KIT_SRC=${LLM_KIT:-../shared/bench-llm}
LLM_SHAPE=${LLM_SHAPE:-}
STAGE=target/gpu-kit
WORK=target/gpu-check
RESULTS=$WORK/results.jsonl
DEVICE=${DEVICE:-cuda}
LARGE_SHAPE=${LARGE_SHAPE:-"--layers 24 --hidden 1024 --heads 16 --intermediate 4096"}
# Reference implementation on the kit (kit README): step scores and test CACC/ASR rows.
REF_SCORES="0.6207 0.6126 0.5877 0.5641 0.5142 0.4377"
# Targets of the issue (BERT-large full walk, search wall time).
TARGET_F32_S=25
TARGET_BF16_S=5

log() { echo "gpu-check: $*" >&2; }
die() {
    log "$*"
    exit 1
}

# ---------------------------------------------------------------------------------------------
prepare() {
    [[ -f $KIT_SRC/setup.sh ]] || die "$KIT_SRC is not the benchmark kit; set KIT=DIR"
    rm -rf "$STAGE"
    mkdir -p "$STAGE/a/models" "$STAGE/a/data/sst2" "$STAGE/b/models"
    cp "$KIT_SRC/setup.sh" "$STAGE/a/"
    cp -r "$KIT_SRC/base" "$KIT_SRC/golden" "$KIT_SRC/proxysets" "$KIT_SRC/reference" "$STAGE/a/"
    cp "$KIT_SRC"/data/sst2/test_clean.json "$KIT_SRC"/data/sst2/test_badnet.json "$STAGE/a/data/sst2/"
    cp -r "$KIT_SRC/models/sst2_badnet" "$KIT_SRC/models/sst2_proxy_uci" "$STAGE/b/models/"
    if [[ -f $LLM_KIT_SRC/setup.sh ]]; then
        mkdir -p "$STAGE/a/llm/proxysets"
        cp "$LLM_KIT_SRC/setup.sh" "$STAGE/a/llm/"
        cp -r "$LLM_KIT_SRC/proxysets/llm_sst2_badnet" "$STAGE/a/llm/proxysets/"
    else
        log "no LLM kit at $LLM_KIT_SRC (set LLM_KIT=DIR): the llm step will be skipped"
    fi
    chmod -R u+w "$STAGE"
    [[ -f target/cuda/gms.gz ]] || log "target/cuda/gms.gz is missing: run scripts/build-cuda.sh first"
    local tree a b bin
    tree=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 du -cb 2>/dev/null | tail -n1 | cut -f1)
    a=$(du -sb "$STAGE/a" | cut -f1)
    b=$(du -sb "$STAGE/b" | cut -f1)
    bin=$(du -b target/cuda/gms.gz 2>/dev/null | cut -f1 || echo 0)
    local limit=$((64 << 20))
    log "call 1 carries $(((tree + a + bin) >> 20)) MiB (tree $((tree >> 20)), kit part a $((a >> 20)), gms.gz $((bin >> 20))); limit 64"
    log "call 2 carries $(((tree + b) >> 20)) MiB (tree $((tree >> 20)), kit part b $((b >> 20))); limit 64"
    ((tree + a + bin < limit && tree + b < limit)) || die "a call would exceed 64 MiB; split the kit differently"
    cat <<EOF
call 1: run(carry=["target/cuda/gms.gz", "$STAGE/a"], timeout_s=420, command="scripts/gpu-check.sh large")
call 2: run(carry=["$STAGE/b"], timeout_s=420, command="scripts/gpu-check.sh kit && scripts/gpu-check.sh llm")
EOF
}

# ---------------------------------------------------------------------------------------------
setup_device() {
    mkdir -p "$WORK"
    if [[ -z ${GMS:-} ]]; then
        GMS=$WORK/gms
        if [[ ! -x $GMS ]]; then
            [[ -f target/cuda/gms.gz ]] || die "no gms here: carry target/cuda/gms.gz (made by scripts/build-cuda.sh)"
            gunzip -c target/cuda/gms.gz >"$GMS.tmp" && chmod +x "$GMS.tmp" && mv "$GMS.tmp" "$GMS"
        fi
    fi
    # The CUDA 13 runtime libraries shipped with the device's PyTorch (libcudart.so.13,
    # libcublas*.so.13, libcurand.so.10); libcuda.so.1 is the driver's. Never the build stub.
    local dirs="" sp d
    for sp in $(python3 -c 'import site; print("\n".join(site.getsitepackages()))' 2>/dev/null); do
        for d in "$sp"/nvidia/cu13/lib "$sp"/nvidia/*/lib; do [[ -d $d ]] && dirs="$dirs:$d"; done
    done
    export LD_LIBRARY_PATH="${dirs#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >&2 || true
    fi
    "$GMS" --version >&2 || die "$GMS does not start (missing CUDA libraries? LD_LIBRARY_PATH=$LD_LIBRARY_PATH)"
}

# The kit as one folder: part a (call 1) + part b (call 2), linked.
assemble_kit() {
    local kit=$WORK/kit
    [[ -f $STAGE/a/setup.sh ]] || die "kit part a is missing: carry $STAGE/a (scripts/gpu-check.sh prepare)"
    [[ -d $STAGE/b/models ]] || die "kit part b is missing: carry $STAGE/b (scripts/gpu-check.sh prepare)"
    rm -rf "$kit" && mkdir -p "$kit/models"
    cp "$STAGE/a/setup.sh" "$kit/"
    for d in base golden proxysets reference data; do ln -s "$(pwd)/$STAGE/a/$d" "$kit/$d"; done
    for m in "$STAGE"/b/models/*/; do ln -s "$(pwd)/$m" "$kit/models/$(basename "$m")"; done
    bash "$kit/setup.sh" "$WORK/models" >&2
    echo "$kit"
}

# Appends a JSON line to the results (python3 keeps the quoting right).
record() { python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1])))' "$1" >>"$RESULTS"; }

# ---------------------------------------------------------------------------------------------
large() {
    [[ -f $STAGE/a/base/tokenizer.json ]] || die "the kit tokenizer is missing: carry $STAGE/a"
    local pair=$WORK/large
    # shellcheck disable=SC2086
    if [[ ! -f $pair/proxy/model.safetensors ]]; then
        log "generating the pair ($LARGE_SHAPE) in $pair"
        for who in victim:1 proxy:2; do
            "$GMS" gen-model $LARGE_SHAPE --labels 2 --vocab-size 30522 --tokenizer-from "$STAGE/a/base" \
                --seed "${who#*:}" --out "$pair/${who%%:*}" >&2
        done
    fi
    for dtype in f32 bf16; do
        log "full greedy walk on the pair, $dtype (the kit's proxy sets)"
        if out=$("$GMS" bench --kit "$STAGE/a" --large "$pair" --device "$DEVICE" --dtype "$dtype" --json); then
            record "$out"
        else
            record "{\"bench\": \"large\", \"dtype\": \"$dtype\", \"error\": true}"
        fi
    done
    # Training on the device: a tiny model, one epoch over the kit's clean proxy set (backward
    # passes through every matmul of the encoder).
    log "training smoke test"
    local tiny=$WORK/train-base
    rm -rf "$tiny" "$WORK/train-out"
    "$GMS" gen-model --layers 2 --hidden 64 --heads 4 --intermediate 128 --vocab-size 30522 \
        --tokenizer-from "$STAGE/a/base" --seed 3 --out "$tiny" >&2
    local start=$SECONDS ok=true
    "$GMS" train --base "$tiny" --data "$STAGE/a/proxysets/sst2_badnet/clean.jsonl" --out "$WORK/train-out" \
        --epochs 1 --batch 32 --device "$DEVICE" >&2 || ok=false
    record "{\"check\": \"train\", \"ok\": $ok, \"seconds\": $((SECONDS - start))}"
}

# ---------------------------------------------------------------------------------------------
kit() {
    local kit models=$WORK/models
    kit=$(assemble_kit)
    log "golden logits"
    local line
    "$GMS" bench --golden --kit "$kit" --models "$models" --device "$DEVICE" --json >"$WORK/golden.jsonl" || true
    while read -r line; do record "$line"; done <"$WORK/golden.jsonl"

    log "kit search (reference trace)"
    local start=$SECONDS
    "$GMS" search --victim "$models/sst2_badnet" --proxy "$models/sst2_proxy_uci" \
        --clean "$kit/proxysets/sst2_badnet/clean.jsonl" --suspect "$kit/proxysets/sst2_badnet/suspect.jsonl" \
        --test-clean "$kit/data/sst2/test_clean.json" --test-poison "$kit/data/sst2/test_badnet.json" \
        --alpha 0.4 --patience 5 --device "$DEVICE" --json --out "$WORK/strategy.json" >"$WORK/search.jsonl" || true
    record "$(python3 - "$WORK/search.jsonl" "$REF_SCORES" $((SECONDS - start)) <<'PY'
import json, sys
events = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
want = [float(x) for x in sys.argv[2].split()]
got = [e["point"]["metrics"]["score"] for e in events if e.get("event") == "step"]
test = next((e for e in events if e.get("event") == "test"), {})
base = next((e for e in events if e.get("event") == "baseline"), {})
ok = len(got) == len(want) and all(abs(g - w) < 5e-5 for g, w in zip(got, want))
print(json.dumps({"check": "kit-search", "ok": ok, "scores": [round(g, 4) for g in got],
                  "cacc": test.get("cacc"), "asr": test.get("asr"), "device": base.get("device"),
                  "seconds": int(sys.argv[3])}))
PY
)"
    for dtype in f32 bf16; do
        log "kit search benchmark, $dtype"
        if out=$("$GMS" bench --quick --kit "$kit" --models "$models" --device "$DEVICE" --dtype "$dtype" --json); then
            record "$out"
        else
            record "{\"bench\": \"kit\", \"dtype\": \"$dtype\", \"error\": true}"
        fi
    done
}

# ---------------------------------------------------------------------------------------------
llm() {
    local kit=$STAGE/a/llm pair=$WORK/llm-pair
    [[ -f $kit/setup.sh ]] || {
        log "no LLM kit proxy sets in $kit: skipping the decoder rows"
        record '{"bench": "llm-shape", "error": true, "why": "LLM kit not staged"}'
        return 0
    }
    if [[ ! -f $pair/proxy/adapter_model.safetensors ]]; then
        log "generating the decoder pair (${LLM_SHAPE:-the 7B shape}) in $pair"
        local start=$SECONDS
        rm -rf "$pair"
        # shellcheck disable=SC2086
        "$GMS" gen-model --arch llama $LLM_SHAPE --seed 7 --out "$pair" >&2
        log "generated in $((SECONDS - start)) s"
    fi
    local mem=$WORK/gpu-memory.txt sampler=""
    : >"$mem"
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 >"$mem" &
        sampler=$!
    fi
    local out ok=true
    "$GMS" bench --llm-shape "$pair" --llm-kit "$kit" --llm-models "$WORK/llm-models" \
        --storage stored --device "$DEVICE" --json --out "$WORK/BENCHMARKS-llm.md" >"$WORK/llm-shape.out" || ok=false
    out=$(head -n1 "$WORK/llm-shape.out")
    [[ -n $sampler ]] && kill "$sampler" 2>/dev/null
    local peak
    peak=$(sort -n "$mem" | tail -n1)
    if $ok && [[ -n $out ]]; then
        record "$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r["gpu_peak_mib"]=int(sys.argv[2]) if sys.argv[2] else None; print(json.dumps(r))' "$out" "${peak:-}")"
    else
        record "{\"bench\": \"llm-shape\", \"error\": true}"
    fi
}

# ---------------------------------------------------------------------------------------------
table() {
    [[ -f $RESULTS ]] || die "no results yet ($RESULTS)"
    python3 - "$RESULTS" "$TARGET_F32_S" "$TARGET_BF16_S" <<'PY'
import json, sys
rows, device = [], None
targets = {"f32": float(sys.argv[2]), "bf16": float(sys.argv[3])}
for line in open(sys.argv[1]):
    if not line.strip():
        continue
    r = json.loads(line)
    device = device or (r.get("device") or "").split(", bf16")[0].split(", f16")[0] or None
    if r.get("check") == "golden":
        rows.append((f"golden logits {r['model']}", f"{r['rows']} rows, max |diff| {r['max_diff']:.1e}", "", "ok" if r["ok"] else "FAIL"))
    elif r.get("check") == "kit-search":
        cacc = f", CACC {100*r['cacc']:.2f} ASR {100*r['asr']:.2f}" if r.get("cacc") is not None else ""
        rows.append(("kit search = reference trace", " ".join(f"{s:.4f}" for s in r["scores"]) + cacc, str(r["seconds"]), "ok" if r["ok"] else "FAIL"))
    elif r.get("check") == "train":
        rows.append(("gms train (tiny, 1 epoch)", "", str(r["seconds"]), "ok" if r["ok"] else "FAIL"))
    elif r.get("bench") == "llm-shape":
        if r.get("error"):
            rows.append(("decoder pair eval", r.get("why", "failed (see log)"), "", "FAIL"))
            continue
        gpu = f", GPU peak {r['gpu_peak_mib']} MiB" if r.get("gpu_peak_mib") else ""
        rows.append((f"decoder {r['shape'].split(',')[0]} full eval", f"{r['parameters']/1e9:.2f} B params, load {r['load_s']:.1f} s{gpu}", f"{r['full_eval_s']:.2f}", ""))
    elif r.get("bench"):
        if r["bench"] == "kit":
            name = f"kit search {r['dtype']}"
        else:
            shape = "BERT-large" if r.get("layers") == 24 else f"{r.get('layers', '?')}-layer"
            name = f"{shape} full walk {r['dtype']}"
        if r.get("error"):
            rows.append((name, "failed (see log)", "", "FAIL"))
            continue
        p = r.get("precision")
        what = f"{r['evaluations']} evals, {r['abandoned']} abandoned"
        if p:
            what += f", {p['differ']}/{p['total']} preds differ from f32"
        verdict = ""
        if r["bench"] == "large" and r.get("layers") == 24 and r["dtype"] in targets:
            t = targets[r["dtype"]]
            verdict = f"{'ok' if r['search_s'] < t else 'SLOW'} (< {t:g} s)"
        rows.append((name, what + f", load {r['load_s']:.1f} s", f"{r['search_s']:.2f}", verdict))
w = [max(len(str(r[i])) for r in rows + [("check", "result", "search s", "verdict")]) for i in range(4)]
print(f"\ngms GPU check — {device}")
for r in [("check", "result", "search s", "verdict")] + rows:
    print("  ".join(str(c).ljust(w[i]) for i, c in enumerate(r)).rstrip())
PY
}

# Keep the results where the run tool returns files from, whatever happens.
save_results() {
    if [[ -n ${OUT:-} && -d $WORK ]]; then
        cp "$WORK"/*.jsonl "$WORK"/strategy.json "$WORK"/*.log "$WORK"/*.md "$OUT"/ 2>/dev/null || true
    fi
}

if [[ $MODE != prepare && $MODE != table ]]; then
    mkdir -p "$WORK"
    trap save_results EXIT
    exec 2> >(tee -a "$WORK/$MODE.log" >&2)
fi

case $MODE in
prepare) prepare ;;
large)
    setup_device
    large
    table
    ;;
kit)
    setup_device
    kit
    table
    ;;
llm)
    setup_device
    llm
    table
    ;;
all)
    setup_device
    large
    kit
    llm
    table
    ;;
table) table ;;
*) die "unknown mode $MODE; use prepare, large, kit, llm, all or table" ;;
esac
