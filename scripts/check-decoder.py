#!/usr/bin/env python3
"""Checks gms's decoder forward pass against transformers (+ peft) on one model.

Usage: check-decoder.py BASE_DIR ADAPTER_DIR|- SENTENCES OURS [TOL]

SENTENCES: a JSON list of sentences, or a dataset file gms reads (JSON lines or a JSON array
of objects with "sentence" or "text"). OURS is either
- a JSON object written by tests/decoder.rs: {"logits": [[..] per sentence], "boundary": k,
  "states": [[[..] per real token] per sentence]} with the hidden states gms computed after
  layer k (before the final norm), or
- the JSON lines `gms eval --predictions FILE` writes ({"logits": [..], "prediction": p} per
  row, file order): logits and predictions only.
The model is transformers' AutoModelForSequenceClassification in float32 (the base loaded from
its stored dtype, as the LLM kit's reference did), under peft's PeftModel when an adapter is
given (never merged) — e.g. a purified adapter written by `gms apply`; the tokenizer is the
base's tokenizer.json with right padding and truncation to 128 tokens, rows run in batches
of 32. A config without pad_token_id gets eos as the pad id, as the GMS reference does. Prints
the max |diff| of logits (and states) and how many argmax predictions agree (ties: lowest
index, as gms); exits 1 if a diff exceeds TOL (1e-4) or a prediction differs.
"""
import json
import sys

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, PreTrainedTokenizerFast


def read_sentences(path):
    text = open(path).read()
    stripped = text.lstrip()
    if stripped.startswith("["):
        rows = json.loads(text)
    else:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [r if isinstance(r, str) else r.get("sentence", r.get("text")) for r in rows]


def read_ours(path):
    text = open(path).read()
    try:
        ours = json.loads(text)
        if isinstance(ours, dict):
            return ours
    except json.JSONDecodeError:
        pass
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return {"logits": [r["logits"] for r in rows], "prediction": [r["prediction"] for r in rows]}


def argmax(row):
    best = 0
    for i, v in enumerate(row):
        if v > row[best]:
            best = i
    return best


def main():
    base, adapter, sentences_path, ours_path = sys.argv[1:5]
    tol = float(sys.argv[5]) if len(sys.argv) > 5 else 1e-4
    ours = read_ours(ours_path)
    sentences = read_sentences(sentences_path)
    num_labels = len(ours["logits"][0])
    config = AutoConfig.from_pretrained(base, num_labels=num_labels)
    if config.pad_token_id is None:
        eos = config.eos_token_id
        config.pad_token_id = eos[0] if isinstance(eos, list) else eos
    model = AutoModelForSequenceClassification.from_pretrained(
        base, config=config, dtype=torch.float32, attn_implementation="eager"
    )
    if adapter != "-":
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    model.eval()
    tok = PreTrainedTokenizerFast(tokenizer_file=f"{base}/tokenizer.json")
    tok.pad_token = tok.convert_ids_to_tokens(config.pad_token_id)
    tok.padding_side = "right"
    k = ours.get("boundary")
    logits, states, masks = [], [], []
    with torch.no_grad():
        for start in range(0, len(sentences), 32):
            chunk = sentences[start : start + 32]
            enc = tok(chunk, padding=True, truncation=True, max_length=128, return_tensors="pt")
            out = model(**enc, output_hidden_states=k is not None)
            logits.extend(out.logits.tolist())
            if k is not None:
                for r in range(len(chunk)):
                    n = int(enc["attention_mask"][r].sum())
                    states.append(out.hidden_states[k][r, :n])
    got = torch.tensor(ours["logits"], dtype=torch.float32)
    logit_diff = (torch.tensor(logits) - got).abs().max().item()
    agree = sum(argmax(a) == argmax(b) for a, b in zip(logits, ours["logits"]))
    if "prediction" in ours:
        agree = sum(argmax(a) == p for a, p in zip(logits, ours["prediction"]))
    state_diff = 0.0
    for r, row in enumerate(ours.get("states", [])):
        mine = torch.tensor(row, dtype=torch.float32)
        if mine.shape != states[r].shape:
            print(f"row {r}: {mine.shape[0]} tokens in gms, {states[r].shape[0]} in transformers")
            sys.exit(1)
        state_diff = max(state_diff, (states[r] - mine).abs().max().item())
    line = f"{base} + {adapter}: {len(sentences)} rows, max |logit diff| {logit_diff:.2e}"
    if k is not None:
        line += f", max |state diff| after layer {k} {state_diff:.2e}"
    print(f"{line}; predictions agree on {agree}/{len(sentences)} rows")
    ok = logit_diff <= tol and state_diff <= tol and agree == len(sentences)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
