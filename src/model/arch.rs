//! The architecture table: the checkpoint name of every tensor, and which of them make up each
//! substitutable module of each layer. The encoder, its writer and the random-model generator
//! all spell names through it, so a checkpoint loads under its own names.
//!
//! GMS substitutes six linear modules per layer (docs/algorithm.md §Modules): Q, K, V, O
//! (attention) and F, P (feed-forward), weight and bias together. Everything else —
//! embeddings, LayerNorms, pooler, classification head — always stays the victim's.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One of the six substitutable linear modules of a transformer layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Module {
    /// Attention query projection.
    Q,
    /// Attention key projection.
    K,
    /// Attention value projection.
    V,
    /// Attention output projection.
    O,
    /// Feed-forward up projection ("intermediate").
    F,
    /// Feed-forward down projection ("output").
    P,
}

impl Module {
    /// All modules in the paper's candidate order.
    pub const ALL: [Module; 6] = [
        Module::Q,
        Module::K,
        Module::V,
        Module::O,
        Module::F,
        Module::P,
    ];

    /// Position in [`Module::ALL`] (and the column in the substitution matrix).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The module's one-letter name.
    pub fn letter(self) -> char {
        ['Q', 'K', 'V', 'O', 'F', 'P'][self.index()]
    }

    /// The `[out, in]` shape of the module's weight in a model of this hidden and
    /// feed-forward size (the bias is `[out]`).
    pub fn shape(self, hidden: usize, intermediate: usize) -> (usize, usize) {
        match self {
            Module::F => (intermediate, hidden),
            Module::P => (hidden, intermediate),
            _ => (hidden, hidden),
        }
    }

    /// Parses a one-letter name (case-insensitive).
    pub fn from_letter(c: char) -> Option<Module> {
        Module::ALL
            .into_iter()
            .find(|m| m.letter() == c.to_ascii_uppercase())
    }
}

impl fmt::Display for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.letter())
    }
}

/// The encoder families gms can load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Architecture {
    /// `BertForSequenceClassification`.
    Bert,
    /// `RobertaForSequenceClassification` and the XLM-R layout (same tensor names).
    Roberta,
    /// `DistilBertForSequenceClassification`.
    DistilBert,
}

impl Architecture {
    /// The Hugging Face class name this architecture is loaded from.
    pub fn hf_class(self) -> &'static str {
        match self {
            Architecture::Bert => "BertForSequenceClassification",
            Architecture::Roberta => "RobertaForSequenceClassification",
            Architecture::DistilBert => "DistilBertForSequenceClassification",
        }
    }

    /// Maps a `config.json` `architectures` entry to an architecture.
    pub fn from_hf_class(name: &str) -> Option<Architecture> {
        match name {
            "BertForSequenceClassification" => Some(Architecture::Bert),
            "RobertaForSequenceClassification" | "XLMRobertaForSequenceClassification" => {
                Some(Architecture::Roberta)
            }
            "DistilBertForSequenceClassification" => Some(Architecture::DistilBert),
            _ => None,
        }
    }

    /// The body's top-level name in the checkpoint (`bert`, `roberta`, `distilbert`): a bare
    /// pre-trained checkpoint (e.g. `BertModel`) stores the same tensors without it.
    pub fn body(self) -> &'static str {
        match self {
            Architecture::Bert => "bert",
            Architecture::Roberta => "roberta",
            Architecture::DistilBert => "distilbert",
        }
    }

    /// Tensor-name prefix of layer `layer` (ends with a dot).
    pub fn layer_prefix(self, layer: usize) -> String {
        let stack = match self {
            Architecture::DistilBert => "transformer",
            _ => "encoder",
        };
        format!("{}.{stack}.layer.{layer}.", self.body())
    }

    /// Checkpoint names of the embedding block.
    pub fn embedding_names(self) -> EmbeddingNames {
        let e = format!("{}.embeddings", self.body());
        EmbeddingNames {
            word: format!("{e}.word_embeddings.weight"),
            position: format!("{e}.position_embeddings.weight"),
            token_type: (self != Architecture::DistilBert)
                .then(|| format!("{e}.token_type_embeddings.weight")),
            norm: format!("{e}.LayerNorm"),
        }
    }

    /// Layer `layer`'s two LayerNorms (each has `.weight` and `.bias`): after attention, then
    /// after the feed-forward block.
    pub fn layer_norm_names(self, layer: usize) -> [String; 2] {
        let p = self.layer_prefix(layer);
        match self {
            Architecture::DistilBert => {
                [format!("{p}sa_layer_norm"), format!("{p}output_layer_norm")]
            }
            _ => [
                format!("{p}attention.output.LayerNorm"),
                format!("{p}output.LayerNorm"),
            ],
        }
    }

    /// The head's two linear layers in forward order (each has `.weight` and `.bias`): the
    /// hidden-to-hidden one (BERT's pooler, RoBERTa's `classifier.dense`, DistilBERT's
    /// `pre_classifier`), then the one that outputs the labels.
    pub fn head_names(self) -> [&'static str; 2] {
        match self {
            Architecture::Bert => ["bert.pooler.dense", "classifier"],
            Architecture::Roberta => ["classifier.dense", "classifier.out_proj"],
            Architecture::DistilBert => ["pre_classifier", "classifier"],
        }
    }

    /// Module path inside a layer (without the layer prefix), as in the checkpoint.
    pub fn module_suffix(self, module: Module) -> &'static str {
        match (self, module) {
            (Architecture::DistilBert, Module::Q) => "attention.q_lin",
            (Architecture::DistilBert, Module::K) => "attention.k_lin",
            (Architecture::DistilBert, Module::V) => "attention.v_lin",
            (Architecture::DistilBert, Module::O) => "attention.out_lin",
            (Architecture::DistilBert, Module::F) => "ffn.lin1",
            (Architecture::DistilBert, Module::P) => "ffn.lin2",
            (_, Module::Q) => "attention.self.query",
            (_, Module::K) => "attention.self.key",
            (_, Module::V) => "attention.self.value",
            (_, Module::O) => "attention.output.dense",
            (_, Module::F) => "intermediate.dense",
            (_, Module::P) => "output.dense",
        }
    }

    /// Full, layer-qualified module path, e.g. `bert.encoder.layer.3.output.dense`.
    ///
    /// Matching must use the full path: `layer.3.output.dense` is not
    /// `layer.3.attention.output.dense`.
    pub fn module_path(self, layer: usize, module: Module) -> String {
        format!("{}{}", self.layer_prefix(layer), self.module_suffix(module))
    }

    /// Which (layer, module) a tensor name belongs to, if it is a substitutable module's
    /// `.weight` or `.bias`.
    pub fn module_of(self, tensor: &str, layers: usize) -> Option<(usize, Module)> {
        let stem = tensor
            .strip_suffix(".weight")
            .or_else(|| tensor.strip_suffix(".bias"))?;
        (0..layers).find_map(|l| {
            Module::ALL
                .into_iter()
                .find(|&m| self.module_path(l, m) == stem)
                .map(|m| (l, m))
        })
    }
}

/// Checkpoint names of an embedding block's tensors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingNames {
    /// Token embeddings `[vocab, hidden]`.
    pub word: String,
    /// Position embeddings `[positions, hidden]`.
    pub position: String,
    /// Token-type embeddings `[types, hidden]` (none in DistilBERT).
    pub token_type: Option<String>,
    /// The LayerNorm after the sum (has `.weight` and `.bias`).
    pub norm: String,
}

impl EmbeddingNames {
    /// Whether `tensor` belongs to the embedding block.
    pub fn contains(&self, tensor: &str) -> bool {
        tensor == self.word
            || tensor == self.position
            || self.token_type.as_deref() == Some(tensor)
            || tensor
                .strip_prefix(self.norm.as_str())
                .is_some_and(|rest| rest == ".weight" || rest == ".bias")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_dense_is_not_attention_output_dense() {
        let a = Architecture::Bert;
        assert_eq!(
            a.module_of("bert.encoder.layer.3.output.dense.weight", 6),
            Some((3, Module::P))
        );
        assert_eq!(
            a.module_of("bert.encoder.layer.3.attention.output.dense.bias", 6),
            Some((3, Module::O))
        );
        assert_eq!(
            a.module_of("bert.encoder.layer.3.attention.output.LayerNorm.weight", 6),
            None
        );
        assert_eq!(a.module_of("bert.pooler.dense.weight", 6), None);
        assert_eq!(
            a.module_of("bert.encoder.layer.11.output.dense.weight", 12),
            Some((11, Module::P))
        );
    }

    #[test]
    fn letters_round_trip() {
        for m in Module::ALL {
            assert_eq!(Module::from_letter(m.letter()), Some(m));
        }
        assert_eq!(Module::from_letter('x'), None);
    }
}
