#!/usr/bin/env python3
"""Merges two PEFT LoRA adapters the way gms's baselines panel does, with transformers + peft
alone, and counts the merged model's proxy-set hits — an independent check of the panel's
decoder rows.

Usage: check-decoder-merge.py BASE VICTIM_ADAPTER PROXY_ADAPTER CLEAN SUSPECT [TARGET]

Each adapter is merged into its own copy of the base (peft's merge_and_unload: W + s·B·A, and
the adapter's saved `score` head), giving the victim and proxy models; then
- linear: every tensor the mean of the two models' (weight 0.5 each),
- task-arithmetic: base + λ·(½(victim − base) + ½(proxy − base)) with λ = 1 for every tensor
  the base has, the victim's `score` head (the base has none),
as `gms merge` defines them for encoders. Prints one JSON line per method with the clean rows
predicted as labelled and the suspect rows predicted as TARGET (default 0), out of how many,
in float32, rows in batches of 32, right padding, truncation to 128 tokens, pad = eos when the
config has no pad id (as gms evaluates decoders).
"""
import json
import sys

import torch
from peft import PeftModel
from transformers import AutoConfig, AutoModelForSequenceClassification, PreTrainedTokenizerFast


def rows(path):
    text = open(path).read()
    if text.lstrip().startswith("["):
        data = json.loads(text)
    else:
        data = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [(r.get("sentence", r.get("text")), int(r["label"])) for r in data]


def load(base, config, adapter=None):
    model = AutoModelForSequenceClassification.from_pretrained(
        base, config=config, dtype=torch.float32, attn_implementation="eager"
    )
    if adapter is not None:
        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    return model.eval()


def predictions(model, tok, sentences):
    out = []
    with torch.no_grad():
        for i in range(0, len(sentences), 32):
            enc = tok(sentences[i : i + 32], padding=True, truncation=True, max_length=128,
                      return_tensors="pt")
            out.extend(model(**enc).logits.argmax(-1).tolist())
    return out


def main():
    base, victim, proxy, clean, suspect = sys.argv[1:6]
    target = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    config = AutoConfig.from_pretrained(base, num_labels=2)
    if config.pad_token_id is None:
        eos = config.eos_token_id
        config.pad_token_id = eos[0] if isinstance(eos, list) else eos
    tok = PreTrainedTokenizerFast(tokenizer_file=f"{base}/tokenizer.json")
    tok.pad_token = tok.convert_ids_to_tokens(config.pad_token_id)
    tok.padding_side = "right"
    sv = load(base, config, victim).state_dict()
    sp = load(base, config, proxy).state_dict()
    sb = load(base, config).state_dict()
    clean_rows, suspect_rows = rows(clean), rows(suspect)
    merges = {
        "linear": {k: 0.5 * sv[k] + 0.5 * sp[k] for k in sv},
        "task-arithmetic": {
            k: (sb[k] + 0.5 * (sv[k] - sb[k]) + 0.5 * (sp[k] - sb[k])) if not k.startswith("score.")
            else sv[k]
            for k in sv
        },
    }
    model = load(base, config)
    for method, weights in merges.items():
        model.load_state_dict(weights)
        pc = predictions(model, tok, [s for s, _ in clean_rows])
        ps = predictions(model, tok, [s for s, _ in suspect_rows])
        print(json.dumps({
            "method": method,
            "clean_correct": sum(p == y for p, (_, y) in zip(pc, clean_rows)),
            "clean_total": len(clean_rows),
            "suspect_hits": sum(p == target for p in ps),
            "suspect_total": len(suspect_rows),
        }), flush=True)


if __name__ == "__main__":
    main()
