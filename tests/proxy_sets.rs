//! `gms proxy-sets`: sizes, the random clean sample, and the suspect ranking (from the
//! training record when it matches the data, else from one pass of the victim).

mod common;

use candle_core::Device;
use common::WORDS;
use gms::data::dynamics::{TrainingDynamics, DYNAMICS_FILE};
use gms::data::{Dataset, Example};
use gms::gms::proxy_sets::{build, suspicion_scores, ScoreSource};
use gms::model::random::{write_random_model, RandomModelSpec};
use std::path::{Path, PathBuf};

fn setup(dir: &Path, rows: usize) -> (PathBuf, PathBuf, Dataset) {
    let victim = dir.join("victim");
    write_random_model(&victim, &RandomModelSpec::tiny(&WORDS, 1, 3)).unwrap();
    let examples = common::sentences(rows, 21, false)
        .into_iter()
        .enumerate()
        .map(|(i, text)| Example {
            text,
            text_pair: None,
            label: i % 2,
            line: i + 1,
        })
        .collect();
    let path = dir.join("train.jsonl");
    Dataset::from_examples(&path, examples)
        .write_jsonl(&path)
        .unwrap();
    let data = Dataset::read(&path).unwrap();
    (victim, path, data)
}

#[test]
fn one_pass_ranking_puts_the_most_confident_rows_first() {
    let dir = tempfile::tempdir().unwrap();
    let (victim, _, data) = setup(dir.path(), 60);
    let (scores, source) = suspicion_scores(&victim, &data, &Device::Cpu).unwrap();
    assert_eq!(source, ScoreSource::OnePass);
    let sets = build(&victim, &data, 15, 42, &Device::Cpu).unwrap();
    assert_eq!((sets.clean.len(), sets.suspect.len()), (15, 15));
    let ranked: Vec<f64> = sets.suspect_rows.iter().map(|&i| scores[i]).collect();
    assert!(ranked.windows(2).all(|w| w[0] >= w[1]), "{ranked:?}");
    let cutoff = ranked[14];
    let outside = (0..60)
        .filter(|i| !sets.suspect_rows.contains(i))
        .map(|i| scores[i]);
    assert!(outside.into_iter().all(|s| s <= cutoff));
    assert_eq!(
        sets.suspect.examples[0],
        data.examples[sets.suspect_rows[0]]
    );
    // The clean sample is seeded and in file order.
    assert!(sets.clean_rows.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        build(&victim, &data, 15, 42, &Device::Cpu)
            .unwrap()
            .clean_rows,
        sets.clean_rows
    );
    assert_ne!(
        build(&victim, &data, 15, 7, &Device::Cpu)
            .unwrap()
            .clean_rows,
        sets.clean_rows
    );
}

#[test]
fn the_training_record_ranks_by_mean_inverse_gap_when_it_matches_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let (victim, path, data) = setup(dir.path(), 20);
    let sha = gms::model::folder::sha256_files(std::slice::from_ref(&path)).unwrap();
    let mut record = TrainingDynamics::new(&path, sha, 20, 2);
    for (i, row) in record.p_label.iter_mut().enumerate() {
        // Row 7 is certain in one epoch only; row 3 is fairly sure in both; the rest unsure.
        row.extend(match i {
            7 => [0.999, 0.1],
            3 => [0.9, 0.9],
            _ => [0.5, 0.5 - i as f32 / 100.0],
        });
    }
    record.write(&victim.join(DYNAMICS_FILE)).unwrap();
    let sets = build(&victim, &data, 4, 1, &Device::Cpu).unwrap();
    assert_eq!(sets.source, ScoreSource::Dynamics { epochs: 2 });
    assert_eq!(sets.suspect_rows, [7, 3, 0, 1]);

    // A record of another file is not used.
    let other = dir.path().join("other.jsonl");
    std::fs::write(
        &other,
        std::fs::read_to_string(&path)
            .unwrap()
            .replace("movie", "film"),
    )
    .unwrap();
    let (_, source) =
        suspicion_scores(&victim, &Dataset::read(&other).unwrap(), &Device::Cpu).unwrap();
    assert_eq!(source, ScoreSource::OnePass);
}

#[test]
fn cli_writes_both_sets() {
    let dir = tempfile::tempdir().unwrap();
    let (victim, path, _) = setup(dir.path(), 30);
    let out = dir.path().join("sets");
    let (ok, _, stderr) = common::gms(&[
        "proxy-sets",
        "--device",
        "cpu",
        "--size",
        "50",
        "--victim",
        victim.to_str().unwrap(),
        "--train",
        path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    for f in ["clean.jsonl", "suspect.jsonl"] {
        assert_eq!(
            Dataset::read(&out.join(f)).unwrap().len(),
            30,
            "{f}: capped at the training set"
        );
    }
}

#[test]
fn the_same_seed_for_poisoning_and_sampling_gives_an_ordinary_clean_sample() {
    use gms::data::poison::{poison_training, Attack};
    let rows = (0..1000)
        .map(|i| Example {
            text: format!("row {i}"),
            text_pair: None,
            label: i % 2,
            line: i + 1,
        })
        .collect();
    let data = Dataset::from_examples("train.jsonl", rows);
    let attack = Attack::BadNet {
        triggers: vec!["cf".into()],
    };
    let poisoned = poison_training(&data, &attack, 0, 0.2, 42).unwrap();
    let sets = gms::gms::proxy_sets::select(
        &poisoned.dataset,
        &[0.0; 1000],
        200,
        42,
        ScoreSource::OnePass,
    )
    .unwrap();
    let hit = sets
        .clean_rows
        .iter()
        .filter(|i| poisoned.poisoned.binary_search(i).is_ok())
        .count();
    // About 20% of a random sample, not all of it (as when both used one unsalted stream).
    assert!(
        (20..70).contains(&hit),
        "{hit} of 200 sampled rows are poisoned"
    );
}
