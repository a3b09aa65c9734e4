#!/usr/bin/env python3
"""Checks gms's decoder forward pass against transformers (+ peft) on one model.

Usage: check-decoder.py BASE_DIR ADAPTER_DIR|- SENTENCES_JSON OURS_JSON [TOL]

SENTENCES_JSON: a JSON list of sentences. OURS_JSON (written by tests/decoder.rs):
{"logits": [[..] per sentence], "boundary": k, "states": [[[..] per real token] per sentence]}
with the hidden states gms computed after layer k (before the final norm). The model is
transformers' AutoModelForSequenceClassification in float32 (the base loaded from its stored
dtype, as the LLM kit's reference did), under peft's PeftModel when an adapter is given
(never merged); the tokenizer is the base's tokenizer.json with right padding and truncation
to 128 tokens. A config without pad_token_id gets eos as the pad id, as the GMS reference
does. Prints the max |diff| of logits and states; exits 1 if either exceeds TOL (1e-4).
"""
import json
import sys

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, PreTrainedTokenizerFast


def main():
    base, adapter, sentences_path, ours_path = sys.argv[1:5]
    tol = float(sys.argv[5]) if len(sys.argv) > 5 else 1e-4
    ours = json.load(open(ours_path))
    sentences = json.load(open(sentences_path))
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
    enc = tok(sentences, padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        out = model(**enc, output_hidden_states=True)
    logits = out.logits
    got = torch.tensor(ours["logits"], dtype=torch.float32)
    logit_diff = (logits - got).abs().max().item()
    k = ours["boundary"]
    states = out.hidden_states[k]
    state_diff = 0.0
    for r, row in enumerate(ours["states"]):
        n = int(enc["attention_mask"][r].sum())
        mine = torch.tensor(row, dtype=torch.float32)
        if mine.shape != states[r, :n].shape:
            print(f"row {r}: {mine.shape[0]} tokens in gms, {n} in transformers")
            sys.exit(1)
        state_diff = max(state_diff, (states[r, :n] - mine).abs().max().item())
    print(
        f"{base} + {adapter}: {len(sentences)} rows, max |logit diff| {logit_diff:.2e}, "
        f"max |state diff| after layer {k} {state_diff:.2e}"
    )
    sys.exit(0 if logit_diff <= tol and state_diff <= tol else 1)


if __name__ == "__main__":
    main()
