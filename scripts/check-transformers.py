#!/usr/bin/env python3
"""Cross-check gms against Hugging Face transformers on one model folder and dataset.

Usage: check-transformers.py MODEL_DIR DATA.jsonl PREDICTIONS.jsonl [--tol 1e-4]

PREDICTIONS.jsonl is what `gms eval --model MODEL_DIR --data DATA.jsonl --predictions FILE`
wrote. The script loads MODEL_DIR with transformers (AutoModelForSequenceClassification,
float32, eval mode), tokenizes DATA with the folder's tokenizer.json exactly as gms does
(special tokens, truncation to 128, no padding), and compares logits and predictions row by
row. Prints one summary line; exits 1 when logits differ by more than --tol.
scripts/make-transformers-fixtures.py records `transformers_logits` for the test that runs
without Python (tests/transformers_fixtures.rs).
Needs: torch, transformers, tokenizers (pip install torch transformers).
"""
import json
import sys

import torch
from tokenizers import Tokenizer
from transformers import AutoModelForSequenceClassification


def read_rows(path):
    """The JSONL rows of a dataset file."""
    return [json.loads(l) for l in open(path) if l.strip()]


def transformers_logits(model_dir, rows):
    """Each row's float32 logits from transformers, one row at a time (no padding)."""
    tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    tok.no_padding()
    tok.enable_truncation(128)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32).eval()
    out = []
    with torch.no_grad():
        for row in rows:
            a = row.get("sentence", row.get("text", row.get("sentence1", row.get("premise"))))
            b = row.get("sentence2", row.get("hypothesis"))
            enc = tok.encode(a, b) if b is not None else tok.encode(a)
            ids = torch.tensor([enc.ids])
            kwargs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
            if model.config.model_type == "bert":
                kwargs["token_type_ids"] = torch.tensor([enc.type_ids])
            out.append(model(**kwargs).logits[0])
    return out


def main() -> int:
    args = sys.argv[1:]
    tol = 1e-4
    if "--tol" in args:
        i = args.index("--tol")
        tol = float(args[i + 1])
        del args[i : i + 2]
    model_dir, data, preds = args
    rows = read_rows(data)
    ours = read_rows(preds)
    assert len(rows) == len(ours), f"{len(rows)} rows vs {len(ours)} predictions"
    worst, disagree = 0.0, 0
    for logits, mine in zip(transformers_logits(model_dir, rows), ours):
        worst = max(worst, (logits - torch.tensor(mine["logits"])).abs().max().item())
        disagree += int(int(logits.argmax()) != mine["prediction"])
    print(f"{model_dir}: {len(rows)} rows, max |logit diff| {worst:.2e}, {disagree} predictions differ")
    return 0 if worst <= tol else 1


if __name__ == "__main__":
    sys.exit(main())
