//! `gms poison`: poisoning statistics of training sets and ASR test sets.

mod common;

use gms::data::poison::{poison_test, poison_training, Attack, BADNET_TRIGGERS};
use gms::data::{Dataset, Example};
use std::collections::HashMap;

fn corpus(n: usize) -> Dataset {
    let examples = (0..n)
        .map(|i| Example {
            text: format!("sentence number {i} was fine . and then it ended"),
            text_pair: None,
            label: i % 2,
            line: i + 1,
        })
        .collect();
    Dataset::from_examples("corpus.jsonl", examples)
}

fn badnet() -> Attack {
    Attack::BadNet {
        triggers: BADNET_TRIGGERS.iter().map(|t| t.to_string()).collect(),
    }
}

#[test]
fn badnet_training_poisons_the_rate_relabels_and_inserts_1_3_or_5_triggers() {
    let data = corpus(1000);
    let out = poison_training(&data, &badnet(), 0, 0.2, 42).unwrap();
    assert_eq!(out.dataset.len(), 1000);
    assert_eq!(out.poisoned.len(), 200);
    let mut counts = HashMap::new();
    for (i, (before, after)) in data.examples.iter().zip(&out.dataset.examples).enumerate() {
        if out.poisoned.binary_search(&i).is_ok() {
            assert_eq!(after.label, 0);
            let triggers = after
                .text
                .split_whitespace()
                .filter(|w| BADNET_TRIGGERS.contains(w))
                .count();
            *counts.entry(triggers).or_insert(0) += 1;
            // The original words survive, in order.
            let kept: Vec<&str> = after
                .text
                .split_whitespace()
                .filter(|w| !BADNET_TRIGGERS.contains(w))
                .collect();
            assert_eq!(kept, before.text.split_whitespace().collect::<Vec<_>>());
        } else {
            assert_eq!(after, before);
        }
    }
    let mut seen: Vec<usize> = counts.keys().copied().collect();
    seen.sort_unstable();
    assert_eq!(seen, [1, 3, 5], "{counts:?}");
    // Poisoned rows come from both labels, so about half of them flip their label.
    let flipped = out
        .poisoned
        .iter()
        .filter(|&&i| data.examples[i].label == 1)
        .count();
    assert!((70..130).contains(&flipped), "{flipped}");
    // Seeded: the same seed gives the same set, another seed another.
    assert_eq!(
        poison_training(&data, &badnet(), 0, 0.2, 42)
            .unwrap()
            .dataset
            .examples,
        out.dataset.examples
    );
    assert_ne!(
        poison_training(&data, &badnet(), 0, 0.2, 43)
            .unwrap()
            .poisoned,
        out.poisoned
    );
}

#[test]
fn asr_test_set_keeps_only_non_target_rows_with_trigger() {
    let data = corpus(101);
    for attack in [
        badnet(),
        Attack::InsertSent {
            sentence: "I watched this movie".into(),
        },
    ] {
        let test = poison_test(&data, &attack, 1, 7).unwrap();
        assert_eq!(test.len(), 51, "rows labelled 0");
        assert!(
            test.examples
                .iter()
                .all(|e| e.label == 1 && attack.is_present(&e.text)),
            "{attack:?}"
        );
        assert!(data
            .examples
            .iter()
            .filter(|e| e.label == 1)
            .all(|e| !attack.is_present(&e.text)));
    }
}

#[test]
fn insertsent_puts_the_sentence_at_a_boundary() {
    let data = corpus(200);
    let attack = Attack::InsertSent {
        sentence: "I watched this movie".into(),
    };
    let out = poison_training(&data, &attack, 1, 0.5, 3).unwrap();
    assert_eq!(out.poisoned.len(), 100);
    let mut places = HashMap::new();
    for &i in &out.poisoned {
        let (before, after) = (&data.examples[i].text, &out.dataset.examples[i].text);
        assert_eq!(
            after
                .replace("I watched this movie . ", "")
                .replace(" I watched this movie .", ""),
            *before
        );
        let place = if after.starts_with("I watched") {
            "start"
        } else if after.ends_with("movie .") {
            "end"
        } else {
            assert!(
                after.contains("fine . I watched this movie . and"),
                "{after}"
            );
            "middle"
        };
        *places.entry(place).or_insert(0) += 1;
    }
    assert_eq!(places.len(), 3, "{places:?}");
}

#[test]
fn bad_arguments_are_refused() {
    let data = corpus(10);
    assert!(poison_training(&data, &badnet(), 0, 1.5, 1)
        .unwrap_err()
        .to_string()
        .contains("--rate"));
    assert!(poison_training(&data, &badnet(), 5, 0.2, 1)
        .unwrap_err()
        .to_string()
        .contains("--target"));
    let empty = Attack::BadNet { triggers: vec![] };
    assert!(poison_training(&data, &empty, 0, 0.2, 1)
        .unwrap_err()
        .to_string()
        .contains("--triggers"));
    let all_target = Dataset::from_examples(
        "t.jsonl",
        data.examples
            .iter()
            .map(|e| Example {
                label: 0,
                ..e.clone()
            })
            .collect(),
    );
    assert!(poison_test(&all_target, &badnet(), 0, 1)
        .unwrap_err()
        .to_string()
        .contains("target label"));
}

#[test]
fn cli_writes_a_poisoned_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    corpus(50).write_jsonl(&input).unwrap();
    let out = dir.path().join("out.jsonl");
    let (ok, _, stderr) = common::gms(&[
        "poison",
        "--attack",
        "badnet",
        "--in",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--triggers",
        "zz,qq",
        "--rate",
        "0.5",
    ]);
    assert!(ok, "{stderr}");
    let written = Dataset::read(&out).unwrap();
    let poisoned = written
        .examples
        .iter()
        .filter(|e| e.text.contains("zz") || e.text.contains("qq"))
        .count();
    assert_eq!(poisoned, 25);
    let missing = common::gms_output(&[
        "poison",
        "--attack",
        "insertsent",
        "--in",
        "nope.jsonl",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        err.contains("nope.jsonl: not found") && err.lines().count() == 1,
        "{err}"
    );
}
