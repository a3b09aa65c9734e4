#!/usr/bin/env python3
"""Record the logits Hugging Face transformers computes for gms's random cross-check models.

Usage: PYTHON scripts/make-transformers-fixtures.py      (PYTHON: one with torch and transformers)

Writes tests/fixtures/transformers_logits.json, which tests/transformers_fixtures.rs asserts on
every `cargo test` with no Python. Rerun it when that test says the random-model generator
changed, and review the diff: the logits it records are the reference gms is held to.

1. Runs the ignored tool test `write_fixture_models` (cargo test --test transformers_fixtures),
   which writes the BERT, RoBERTa and DistilBERT cross-check models with gms's own generator
   (tests/common's write_crosscheck_model), their sentences and each folder's sha256.
2. Loads each model with transformers and computes its logits exactly as
   scripts/check-transformers.py does (float32, tokenizer.json, truncation to 128, no padding).
3. Writes the fixture: sentences, library versions, and per model the folder sha256, logits and
   predictions (argmax, lowest index on ties).
"""
import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests/fixtures/transformers_logits.json"


def load_checker():
    spec = importlib.util.spec_from_file_location("check_transformers", ROOT / "scripts/check-transformers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    check = load_checker()
    import tokenizers
    import torch
    import transformers

    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, GMS_FIXTURE_DIR=tmp)
        subprocess.run(
            ["cargo", "test", "--quiet", "--test", "transformers_fixtures", "--",
             "--ignored", "--exact", "write_fixture_models"],
            cwd=ROOT, env=env, check=True,
        )
        manifest = json.load(open(f"{tmp}/manifest.json"))
        rows = check.read_rows(f"{tmp}/data.jsonl")
        assert [r["sentence"] for r in rows] == manifest["sentences"]
        models = []
        for m in manifest["models"]:
            logits = check.transformers_logits(f"{tmp}/{m['architecture']}", rows)
            values = [[float(x) for x in l.tolist()] for l in logits]
            margin = min(float(l.topk(2).values[0] - l.topk(2).values[1]) for l in logits)
            print(f"{m['architecture']}: {len(values)} rows, smallest top-2 margin {margin:.2e}", file=sys.stderr)
            models.append({
                "architecture": m["architecture"],
                "folder_sha256": m["folder_sha256"],
                "predictions": [int(l.argmax()) for l in logits],
                "logits": values,
            })

    # One logits row per line keeps the file short and its diffs readable.
    head = {
        "about": "Logits Hugging Face transformers computes for gms's random cross-check models "
                 "(tests/common: write_crosscheck_model, crosscheck_sentences). Written by "
                 "scripts/make-transformers-fixtures.py; asserted by tests/transformers_fixtures.rs.",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "sentences": manifest["sentences"],
    }
    lines = ["{"]
    for k, v in head.items():
        lines.append(f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)},")
    lines.append('  "models": [')
    for i, m in enumerate(models):
        lines.append("    {")
        lines.append(f'      "architecture": {json.dumps(m["architecture"])},')
        lines.append(f'      "folder_sha256": {json.dumps(m["folder_sha256"])},')
        lines.append(f'      "predictions": {json.dumps(m["predictions"])},')
        lines.append('      "logits": [')
        lines.append(",\n".join(f"        {json.dumps(r)}" for r in m["logits"]))
        lines.append("      ]")
        lines.append("    }" + ("," if i + 1 < len(models) else ""))
    lines.append("  ]")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    json.loads(text)  # the hand-laid-out file must still be JSON
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = FIXTURE.with_suffix(".json.tmp")
    tmp_path.write_text(text)
    tmp_path.replace(FIXTURE)
    print(f"wrote {FIXTURE.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
