//! Training a BERT-style WordPiece vocabulary on a dataset, for models trained from scratch.

use crate::data::Example;
use crate::error::{GmsError, Result};
use crate::model::random::SPECIAL_TOKENS;
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::wordpiece::{WordPiece, WordPieceTrainer};
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::{AddedToken, Model, TokenizerImpl};

/// Sub-words seen fewer times than this stay out of the vocabulary: on a few thousand
/// sentences, singletons would mostly be typos and would never be seen again at test time.
const MIN_FREQUENCY: u64 = 2;

/// Trains a lower-casing WordPiece vocabulary of at most `vocab_size` entries (the BERT special
/// tokens included) on the texts of `examples`; returns the non-special tokens in id order,
/// as [`crate::model::random::TokenizerSource::Words`] takes them.
pub fn train_wordpiece(examples: &[Example], vocab_size: usize) -> Result<Vec<String>> {
    if vocab_size <= SPECIAL_TOKENS.len() + 26 {
        return Err(GmsError::BadArgument {
            flag: "--config",
            value: vocab_size.to_string(),
            problem: "vocab_size is too small for a WordPiece vocabulary; use a few thousand"
                .into(),
        });
    }
    let failed = |e: Box<dyn std::error::Error + Send + Sync>| GmsError::BadArgument {
        flag: "--data",
        value: String::new(),
        problem: format!("cannot train a WordPiece vocabulary on it ({e})"),
    };
    let mut tokenizer: TokenizerImpl<
        WordPiece,
        BertNormalizer,
        BertPreTokenizer,
        PostProcessorWrapper,
        WordPieceDecoder,
    > = TokenizerImpl::new(WordPiece::default());
    tokenizer.with_normalizer(Some(BertNormalizer::default()));
    tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
    let mut trainer = WordPieceTrainer::builder()
        .vocab_size(vocab_size)
        .min_frequency(MIN_FREQUENCY)
        .show_progress(false)
        .special_tokens(
            SPECIAL_TOKENS
                .iter()
                .map(|t| AddedToken::from(t.to_string(), true))
                .collect(),
        )
        .build();
    let texts = examples
        .iter()
        .flat_map(|e| std::iter::once(e.text.as_str()).chain(e.text_pair.as_deref()));
    tokenizer.train(&mut trainer, texts).map_err(failed)?;
    let mut vocab: Vec<(String, u32)> = tokenizer.get_model().get_vocab().into_iter().collect();
    vocab.sort_by_key(|(_, id)| *id);
    let (special, words) = vocab.split_at(SPECIAL_TOKENS.len().min(vocab.len()));
    let in_order = special
        .iter()
        .map(|(t, _)| t.as_str())
        .eq(SPECIAL_TOKENS.iter().copied());
    let dense = vocab.iter().enumerate().all(|(i, (_, id))| i as u32 == *id);
    if !in_order || !dense {
        return Err(failed(
            "the trainer did not put the special tokens first".into(),
        ));
    }
    Ok(words.iter().map(|(t, _)| t.clone()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::random::wordpiece_tokenizer_json;

    #[test]
    fn trained_vocabulary_tokenizes_with_cls_and_sep() {
        let rows: Vec<Example> = [
            "the film was great",
            "the plot was dull",
            "great acting, dull plot",
        ]
        .iter()
        .cycle()
        .take(30)
        .map(|t| Example {
            text: t.to_string(),
            text_pair: None,
            label: 0,
            line: 0,
        })
        .collect();
        let words = train_wordpiece(&rows, 200).unwrap();
        assert!(words.iter().any(|w| w == "great"), "{words:?}");
        let json = wordpiece_tokenizer_json(&words).to_string();
        let tok = tokenizers::Tokenizer::from_bytes(json.as_bytes()).unwrap();
        let enc = tok.encode("The film was GREAT", true).unwrap();
        assert_eq!(
            enc.get_tokens(),
            ["[CLS]", "the", "film", "was", "great", "[SEP]"]
        );
    }
}
