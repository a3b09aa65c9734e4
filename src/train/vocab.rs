//! Learning a BERT-style WordPiece vocabulary on a dataset, for models trained from scratch.
//!
//! Texts are normalized and split into words exactly as the written `tokenizer.json` will do
//! it (the `tokenizers` crate's `BertNormalizer` and `BertPreTokenizer`); sub-words are then
//! learnt by merging the most frequent adjacent pair, as the `tokenizers` WordPiece trainer
//! does. gms runs the merges itself because that trainer walks hash maps seeded per process:
//! its token ids, and at equal counts its tokens, change from run to run, and so would every
//! model trained on them. Here ties go to the pair whose text sorts first, so `gms train
//! --config` (and `scripts/make-demo.sh`) are reproducible.

use crate::data::Example;
use crate::error::{GmsError, Result};
use crate::model::random::SPECIAL_TOKENS;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::{
    NormalizedString, Normalizer, OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer,
};

/// Pairs seen fewer times than this are not merged: on a few thousand sentences, rarer
/// sub-words would mostly be typos never seen again at test time.
const MIN_FREQUENCY: u64 = 2;

/// The prefix of word-internal pieces.
const CONTINUATION: &str = "##";

/// Learns a lower-casing WordPiece vocabulary of at most `vocab_size` entries (the BERT special
/// tokens included; more only if the alphabet alone is larger) on the texts of `examples`; returns the non-special tokens in id order, as
/// [`crate::model::random::TokenizerSource::Words`] takes them: the alphabet (sorted), then
/// the merged pieces in the order they were learnt.
pub fn train_wordpiece(examples: &[Example], vocab_size: usize) -> Result<Vec<String>> {
    if vocab_size <= SPECIAL_TOKENS.len() + 26 {
        return Err(GmsError::BadArgument {
            flag: "--config",
            value: vocab_size.to_string(),
            problem: "vocab_size is too small for a WordPiece vocabulary; use a few thousand"
                .into(),
        });
    }
    let counts = word_counts(examples)?;
    // Each distinct word as symbol ids, with its count.
    let mut symbols: Vec<String> = Vec::new();
    let mut id_of: HashMap<String, u32> = HashMap::new();
    let alphabet: BTreeSet<String> = counts.keys().flat_map(|w| pieces(w)).collect();
    for s in &alphabet {
        id_of.insert(s.clone(), symbols.len() as u32);
        symbols.push(s.clone());
    }
    let mut words: Vec<(Vec<u32>, u64)> = counts
        .iter()
        .map(|(w, &c)| (pieces(w).iter().map(|p| id_of[p]).collect(), c))
        .collect();

    let mut pair_count: HashMap<(u32, u32), u64> = HashMap::new();
    let mut pair_words: HashMap<(u32, u32), HashSet<usize>> = HashMap::new();
    for (i, (w, c)) in words.iter().enumerate() {
        for p in w.windows(2) {
            *pair_count.entry((p[0], p[1])).or_default() += c;
            pair_words.entry((p[0], p[1])).or_default().insert(i);
        }
    }
    let budget = vocab_size - SPECIAL_TOKENS.len();
    let mut learnt: Vec<String> = Vec::new();
    while alphabet.len() + learnt.len() < budget {
        let merged_text = |&(a, b): &(u32, u32)| {
            format!(
                "{}{}",
                symbols[a as usize],
                symbols[b as usize].trim_start_matches(CONTINUATION)
            )
        };
        let best = pair_count
            .iter()
            .filter(|(_, &c)| c >= MIN_FREQUENCY)
            .max_by(|(p, c), (q, d)| {
                c.cmp(d).then_with(|| {
                    let (pa, pb) = (&symbols[p.0 as usize], &symbols[p.1 as usize]);
                    let (qa, qb) = (&symbols[q.0 as usize], &symbols[q.1 as usize]);
                    (qa, qb).cmp(&(pa, pb)) // the pair whose text sorts first wins a tie
                })
            })
            .map(|(p, _)| *p);
        let Some(pair) = best else { break };
        let text = merged_text(&pair);
        let new_id = match id_of.get(&text) {
            Some(&id) => id,
            None => {
                id_of.insert(text.clone(), symbols.len() as u32);
                symbols.push(text.clone());
                learnt.push(text);
                (symbols.len() - 1) as u32
            }
        };
        let touched: Vec<usize> = pair_words.remove(&pair).into_iter().flatten().collect();
        pair_count.remove(&pair);
        for i in touched {
            let (w, c) = &mut words[i];
            for p in w.windows(2) {
                let key = (p[0], p[1]);
                if let Some(n) = pair_count.get_mut(&key) {
                    *n -= *c;
                }
            }
            let mut merged = Vec::with_capacity(w.len());
            let mut j = 0;
            while j < w.len() {
                if j + 1 < w.len() && (w[j], w[j + 1]) == pair {
                    merged.push(new_id);
                    j += 2;
                } else {
                    merged.push(w[j]);
                    j += 1;
                }
            }
            *w = merged;
            for p in w.windows(2) {
                *pair_count.entry((p[0], p[1])).or_default() += *c;
                pair_words.entry((p[0], p[1])).or_default().insert(i);
            }
        }
    }
    Ok(alphabet.into_iter().chain(learnt).collect())
}

/// A word's initial pieces: its first character, then `##c` for each following one.
fn pieces(word: &str) -> Vec<String> {
    word.chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 0 {
                c.to_string()
            } else {
                format!("{CONTINUATION}{c}")
            }
        })
        .collect()
}

/// Counts of the words of all texts, normalized and split as the BERT tokenizer does.
fn word_counts(examples: &[Example]) -> Result<BTreeMap<String, u64>> {
    let failed = |e: Box<dyn std::error::Error + Send + Sync>| GmsError::BadArgument {
        flag: "--data",
        value: String::new(),
        problem: format!("cannot split its texts into words ({e})"),
    };
    let normalizer = BertNormalizer::default();
    let mut counts = BTreeMap::new();
    for text in examples
        .iter()
        .flat_map(|e| std::iter::once(e.text.as_str()).chain(e.text_pair.as_deref()))
    {
        let mut normalized = NormalizedString::from(text);
        normalizer.normalize(&mut normalized).map_err(failed)?;
        let mut split = PreTokenizedString::from(normalized);
        BertPreTokenizer.pre_tokenize(&mut split).map_err(failed)?;
        for (word, _, _) in split.get_splits(OffsetReferential::Original, OffsetType::Byte) {
            *counts.entry(word.to_string()).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::random::wordpiece_tokenizer_json;

    fn rows(texts: &[&str], n: usize) -> Vec<Example> {
        texts
            .iter()
            .cycle()
            .take(n)
            .map(|t| Example {
                text: t.to_string(),
                text_pair: None,
                label: 0,
                line: 0,
            })
            .collect()
    }

    #[test]
    fn learnt_vocabulary_tokenizes_with_cls_and_sep() {
        let data = rows(
            &[
                "the film was great",
                "the plot was dull",
                "great acting, dull plot",
            ],
            30,
        );
        let words = train_wordpiece(&data, 200).unwrap();
        assert!(words.iter().any(|w| w == "great"), "{words:?}");
        let json = wordpiece_tokenizer_json(&words).to_string();
        let tok = tokenizers::Tokenizer::from_bytes(json.as_bytes()).unwrap();
        let enc = tok.encode("The film was GREAT", true).unwrap();
        assert_eq!(
            enc.get_tokens(),
            ["[CLS]", "the", "film", "was", "great", "[SEP]"]
        );
        let rare = tok.encode("plotting", true).unwrap();
        assert!(
            !rare.get_tokens().contains(&"[UNK]".to_string()),
            "{:?}",
            rare.get_tokens()
        );
    }

    #[test]
    fn the_vocabulary_is_the_same_every_time_and_respects_the_size() {
        let data = rows(&["ab ab ac ad", "cd cd ce", "xy xz yz"], 12);
        let first = train_wordpiece(&data, 40).unwrap();
        for _ in 0..5 {
            assert_eq!(train_wordpiece(&data, 40).unwrap(), first);
        }
        assert!(first.len() + SPECIAL_TOKENS.len() <= 40);
        // Equal counts: the pair whose text sorts first is merged first.
        let ab = first.iter().position(|w| w == "ab").unwrap();
        let cd = first.iter().position(|w| w == "cd").unwrap();
        assert!(ab < cd, "{first:?}");
    }
}
