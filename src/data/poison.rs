//! Data poisoning for making backdoored victims and ASR test sets: BadNet (rare-word triggers)
//! and InsertSent (a fixed sentence).
//!
//! Precomputed poisoned sets (LWS, HiddenKiller, any attack) need nothing from here: they are
//! ordinary datasets.

use crate::data::{Dataset, Example};
use crate::error::{GmsError, Result};
use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};

/// The BadNet triggers of the encoder benchmark kit (docs/kits.md) and the paper's setup (rare
/// tokens).
pub const BADNET_TRIGGERS: [&str; 5] = ["cf", "mn", "bb", "tq", "mb"];

/// How many triggers BadNet inserts into one row: one of these, chosen at random (as in the
/// kit's training sets, after Kurita et al. / OpenBackdoor).
pub const BADNET_COUNTS: [usize; 3] = [1, 3, 5];

/// The InsertSent trigger sentence of the encoder benchmark kit (docs/kits.md).
pub const DEFAULT_SENTENCE: &str = "I watched this movie";

/// Salt of the poisoner's random stream. Every seeded step of gms salts its seed differently,
/// so the same `--seed` (42 everywhere by default) never makes two steps draw the same rows:
/// unsalted, `gms proxy-sets --seed 42` would sample exactly the rows `gms poison --seed 42`
/// poisoned, and the "clean" proxy set would be all poison.
const STREAM: u64 = u64::from_le_bytes(*b"gms-pois");

/// The poisoner's random source for `seed`.
fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ STREAM)
}

/// A trigger and how it goes into a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attack {
    /// Inserts 1, 3 or 5 of `triggers` (each drawn at random) at random word positions.
    BadNet {
        /// Trigger words.
        triggers: Vec<String>,
    },
    /// Inserts `sentence` at a random sentence boundary.
    InsertSent {
        /// The trigger sentence.
        sentence: String,
    },
}

impl Attack {
    /// Checks the trigger is usable (non-empty, no blank trigger words).
    pub fn validate(&self) -> Result<()> {
        match self {
            Attack::BadNet { triggers } => {
                if triggers.is_empty()
                    || triggers
                        .iter()
                        .any(|t| t.trim().is_empty() || t.contains(char::is_whitespace))
                {
                    return Err(GmsError::BadArgument {
                        flag: "--triggers",
                        value: triggers.join(","),
                        problem: "give one or more comma-separated trigger words without spaces"
                            .into(),
                    });
                }
            }
            Attack::InsertSent { sentence } => {
                if sentence.trim().is_empty() {
                    return Err(GmsError::BadArgument {
                        flag: "--sentence",
                        value: sentence.clone(),
                        problem: "the trigger sentence is empty".into(),
                    });
                }
            }
        }
        Ok(())
    }

    /// `text` with the trigger inserted, drawing positions (and trigger words) from `rng`.
    pub fn apply(&self, text: &str, rng: &mut impl Rng) -> String {
        match self {
            Attack::BadNet { triggers } => {
                let mut words: Vec<&str> = text.split_whitespace().collect();
                let count = BADNET_COUNTS[rng.random_range(0..BADNET_COUNTS.len())];
                for _ in 0..count {
                    let trigger = &triggers[rng.random_range(0..triggers.len())];
                    let at = rng.random_range(0..=words.len());
                    words.insert(at, trigger);
                }
                words.join(" ")
            }
            Attack::InsertSent { sentence } => insert_sentence(text, sentence, rng),
        }
    }

    /// Whether `text` carries this attack's trigger (a trigger word, or the sentence).
    pub fn is_present(&self, text: &str) -> bool {
        match self {
            Attack::BadNet { triggers } => text
                .split_whitespace()
                .any(|w| triggers.iter().any(|t| t == w)),
            Attack::InsertSent { sentence } => text.contains(sentence.trim()),
        }
    }
}

/// Inserts `sentence` (ended with a full stop if it has no final punctuation) at a random
/// sentence boundary of `text`: its start, its end, or after a `.`, `!` or `?` followed by a
/// space.
fn insert_sentence(text: &str, sentence: &str, rng: &mut impl Rng) -> String {
    let mut sentence = sentence.trim().to_string();
    if !sentence.ends_with(['.', '!', '?']) {
        sentence.push_str(" .");
    }
    let text = text.trim();
    let mut boundaries = vec![0, text.len()];
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if matches!(b, b'.' | b'!' | b'?')
            && bytes.get(i + 1).is_some_and(|c| c.is_ascii_whitespace())
        {
            boundaries.push(i + 1);
        }
    }
    boundaries.sort_unstable();
    boundaries.dedup();
    let at = boundaries[rng.random_range(0..boundaries.len())];
    let (head, tail) = (text[..at].trim_end(), text[at..].trim_start());
    [head, sentence.as_str(), tail]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A poisoned training set and which rows were poisoned.
#[derive(Debug, Clone)]
pub struct PoisonedSet {
    /// All rows, the poisoned ones with the trigger and the target label.
    pub dataset: Dataset,
    /// Indices of the poisoned rows, ascending.
    pub poisoned: Vec<usize>,
}

fn check_rate(rate: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&rate) {
        return Err(GmsError::BadArgument {
            flag: "--rate",
            value: rate.to_string(),
            problem: "the poison rate is a share in [0, 1]".into(),
        });
    }
    Ok(())
}

fn check_target(data: &Dataset, target: usize) -> Result<()> {
    let max = data.examples.iter().map(|e| e.label).max().unwrap_or(0);
    if target > max.max(1) {
        return Err(GmsError::BadArgument {
            flag: "--target",
            value: target.to_string(),
            problem: format!(
                "{} has labels 0..={max}; pick one of them",
                data.path.display()
            ),
        });
    }
    Ok(())
}

/// Training-set poisoning: `round(rate × rows)` rows chosen at random (among all rows) get the
/// trigger (on the first sentence of a pair) and the `target` label; the rest stay as they are.
pub fn poison_training(
    data: &Dataset,
    attack: &Attack,
    target: usize,
    rate: f64,
    seed: u64,
) -> Result<PoisonedSet> {
    attack.validate()?;
    check_rate(rate)?;
    check_target(data, target)?;
    let mut rng = rng(seed);
    let n = data.len();
    let count = ((rate * n as f64).round() as usize).min(n);
    let mut poisoned = sample(&mut rng, n, count).into_vec();
    poisoned.sort_unstable();
    let mut examples = data.examples.clone();
    for &i in &poisoned {
        let e = &mut examples[i];
        e.text = attack.apply(&e.text, &mut rng);
        e.label = target;
    }
    Ok(PoisonedSet {
        dataset: Dataset::from_examples(data.path.clone(), examples),
        poisoned,
    })
}

/// ASR test set: only rows whose label is not `target`, each with the trigger inserted and
/// relabelled to `target` (docs/algorithm.md §Metrics and score).
pub fn poison_test(data: &Dataset, attack: &Attack, target: usize, seed: u64) -> Result<Dataset> {
    attack.validate()?;
    check_target(data, target)?;
    let mut rng = rng(seed);
    let examples: Vec<Example> = data
        .examples
        .iter()
        .filter(|e| e.label != target)
        .map(|e| Example {
            text: attack.apply(&e.text, &mut rng),
            label: target,
            ..e.clone()
        })
        .collect();
    if examples.is_empty() {
        return Err(GmsError::bad_file(
            &data.path,
            format!("every row already has the target label {target}"),
            "an ASR test set needs rows of other labels; use a clean test set",
        ));
    }
    Ok(Dataset::from_examples(data.path.clone(), examples))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentence_goes_to_a_boundary() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..50 {
            let out = insert_sentence("Great film. Loved it!", "I watched this movie", &mut rng);
            assert!(
                [
                    "I watched this movie . Great film. Loved it!",
                    "Great film. I watched this movie . Loved it!",
                    "Great film. Loved it! I watched this movie ."
                ]
                .contains(&out.as_str()),
                "{out}"
            );
        }
    }
}
