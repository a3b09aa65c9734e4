#!/usr/bin/env python3
"""Cross-check gms against Hugging Face transformers on one model folder and dataset.

Usage: check-transformers.py MODEL_DIR DATA.jsonl PREDICTIONS.jsonl [--tol 1e-4]

PREDICTIONS.jsonl is what `gms eval --model MODEL_DIR --data DATA.jsonl --predictions FILE`
wrote. The script loads MODEL_DIR with transformers (AutoModelForSequenceClassification,
float32, eval mode), tokenizes DATA with the folder's tokenizer.json exactly as gms does
(special tokens, truncation to 128, no padding), and compares logits and predictions row by
row. Prints one summary line; exits 1 when logits differ by more than --tol.
Needs: torch, transformers, tokenizers (pip install torch transformers).
"""
import json
import sys

import torch
from tokenizers import Tokenizer
from transformers import AutoModelForSequenceClassification


def main() -> int:
    args = sys.argv[1:]
    tol = 1e-4
    if "--tol" in args:
        i = args.index("--tol")
        tol = float(args[i + 1])
        del args[i : i + 2]
    model_dir, data, preds = args
    tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    tok.no_padding()
    tok.enable_truncation(128)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32).eval()
    rows = [json.loads(l) for l in open(data) if l.strip()]
    ours = [json.loads(l) for l in open(preds) if l.strip()]
    assert len(rows) == len(ours), f"{len(rows)} rows vs {len(ours)} predictions"
    worst, disagree = 0.0, 0
    with torch.no_grad():
        for row, mine in zip(rows, ours):
            a = row.get("sentence", row.get("text", row.get("sentence1", row.get("premise"))))
            b = row.get("sentence2", row.get("hypothesis"))
            enc = tok.encode(a, b) if b is not None else tok.encode(a)
            ids = torch.tensor([enc.ids])
            kwargs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
            if model.config.model_type == "bert":
                kwargs["token_type_ids"] = torch.tensor([enc.type_ids])
            logits = model(**kwargs).logits[0]
            worst = max(worst, (logits - torch.tensor(mine["logits"])).abs().max().item())
            disagree += int(int(logits.argmax()) != mine["prediction"])
    print(f"{model_dir}: {len(rows)} rows, max |logit diff| {worst:.2e}, {disagree} predictions differ")
    return 0 if worst <= tol else 1


if __name__ == "__main__":
    sys.exit(main())
