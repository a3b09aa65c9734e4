//! The architecture table: the checkpoint name of every tensor, and which of them make up each
//! substitutable module of each layer. The encoder, the decoder, their writers and the
//! random-model generators all spell names through it, so a checkpoint loads under its own
//! names.
//!
//! Which modules a layer has belongs to the architecture (docs/algorithm.md §Modules):
//! encoders substitute six linear modules per layer, Q, K, V, O (attention) and F, P
//! (feed-forward), weight and bias together ([`ENCODER_MODULES`]); Llama-family decoders
//! seven, Q, K, V, O, G, U, D (`q/k/v/o_proj`, `gate/up/down_proj`), each a LoRA pair over a
//! shared base ([`DECODER_MODULES`]). Everything else — embeddings, norms, pooler,
//! classification head — always stays the victim's.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// One substitutable linear module of a transformer layer, of any architecture gms loads.
///
/// The variants' order is the candidate order of every architecture's list
/// ([`ENCODER_MODULES`], [`DECODER_MODULES`] are both in this order; a unit test holds it), so
/// a cell set can be listed in enum order without knowing the architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Module {
    /// Attention query projection (`query`, `q_lin`, `q_proj`).
    Q,
    /// Attention key projection (`key`, `k_lin`, `k_proj`).
    K,
    /// Attention value projection (`value`, `v_lin`, `v_proj`).
    V,
    /// Attention output projection (`attention.output.dense`, `out_lin`, `o_proj`).
    O,
    /// Encoder feed-forward up projection ("intermediate").
    F,
    /// Encoder feed-forward down projection ("output").
    P,
    /// Decoder SwiGLU gate projection (`gate_proj`).
    G,
    /// Decoder SwiGLU up projection (`up_proj`).
    U,
    /// Decoder SwiGLU down projection (`down_proj`).
    D,
}

/// The modules of an encoder layer (BERT, RoBERTa, DistilBERT), in candidate order.
pub const ENCODER_MODULES: [Module; 6] = [
    Module::Q,
    Module::K,
    Module::V,
    Module::O,
    Module::F,
    Module::P,
];

/// The modules of a Llama-family decoder layer (Llama, Mistral, Qwen2), in the candidate order
/// gms fixes. The reference walks them in a Python set's iteration order, which depends on
/// `PYTHONHASHSEED` (docs/algorithm.md §Modules).
pub const DECODER_MODULES: [Module; 7] = [
    Module::Q,
    Module::K,
    Module::V,
    Module::O,
    Module::G,
    Module::U,
    Module::D,
];

impl Module {
    /// Every module of every architecture, in enum order (letters, parsing; not a model's
    /// module list: that is [`ModelArchitecture::modules`]).
    pub const VARIANTS: [Module; 9] = [
        Module::Q,
        Module::K,
        Module::V,
        Module::O,
        Module::F,
        Module::P,
        Module::G,
        Module::U,
        Module::D,
    ];

    /// Position in [`Module::VARIANTS`]: the module's bit in a substitution matrix row.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The module's one-letter name.
    pub fn letter(self) -> char {
        ['Q', 'K', 'V', 'O', 'F', 'P', 'G', 'U', 'D'][self.index()]
    }

    /// Parses a one-letter name (case-insensitive).
    pub fn from_letter(c: char) -> Option<Module> {
        Module::VARIANTS
            .into_iter()
            .find(|m| m.letter() == c.to_ascii_uppercase())
    }

    /// Position of the module in `list` (an architecture's module list), if it is there.
    pub fn position_in(self, list: &[Module]) -> Option<usize> {
        list.iter().position(|&m| m == self)
    }

    /// The `[out, in]` shape of an encoder module's weight in a model of this hidden and
    /// feed-forward size (the bias is `[out]`).
    pub fn shape(self, hidden: usize, intermediate: usize) -> (usize, usize) {
        match self {
            Module::F | Module::G | Module::U => (intermediate, hidden),
            Module::P | Module::D => (hidden, intermediate),
            _ => (hidden, hidden),
        }
    }

    /// The projection a decoder layer names this module by, as PEFT's `target_modules` lists
    /// it (`q_proj`, …, `down_proj`); `None` for the encoder-only F and P.
    pub fn proj_name(self) -> Option<&'static str> {
        Some(match self {
            Module::Q => "q_proj",
            Module::K => "k_proj",
            Module::V => "v_proj",
            Module::O => "o_proj",
            Module::G => "gate_proj",
            Module::U => "up_proj",
            Module::D => "down_proj",
            Module::F | Module::P => return None,
        })
    }

    /// Parses a decoder projection name (`q_proj`, …).
    pub fn from_proj_name(name: &str) -> Option<Module> {
        DECODER_MODULES
            .into_iter()
            .find(|m| m.proj_name() == Some(name))
    }

    /// The module's checkpoint path in decoder layer `layer`, e.g.
    /// `model.layers.3.self_attn.q_proj` (Llama, Mistral and Qwen2 share the names).
    ///
    /// Only the modules of [`DECODER_MODULES`] have one; callers iterate that list.
    pub fn decoder_path(self, layer: usize) -> String {
        let block = match self {
            Module::Q | Module::K | Module::V | Module::O => "self_attn",
            _ => "mlp",
        };
        let proj = self
            .proj_name()
            .expect("decoder_path is asked only for decoder modules");
        format!("model.layers.{layer}.{block}.{proj}")
    }
}

impl fmt::Display for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.letter())
    }
}

/// The letters of a module list, e.g. `QKVOFP`.
pub fn letters(modules: &[Module]) -> String {
    modules.iter().map(|m| m.letter()).collect()
}

/// The decoder families gms can load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecoderArchitecture {
    /// Llama 2/3, SmolLM, TinyLlama and other `model_type: llama` checkpoints.
    Llama,
    /// Mistral (sliding-window attention when the config sets a window).
    Mistral,
    /// Qwen2 / Qwen2.5 (biases on the q/k/v projections).
    Qwen2,
}

impl DecoderArchitecture {
    /// Recognises the family from `model_type`, else from the first `architectures` class.
    pub fn from_config(v: &Value) -> Option<DecoderArchitecture> {
        let by_type = match v["model_type"].as_str() {
            Some("llama") => Some(DecoderArchitecture::Llama),
            Some("mistral") => Some(DecoderArchitecture::Mistral),
            Some("qwen2") => Some(DecoderArchitecture::Qwen2),
            _ => None,
        };
        by_type.or_else(|| {
            let class = v["architectures"].as_array()?.first()?.as_str()?;
            [
                ("Llama", DecoderArchitecture::Llama),
                ("Mistral", DecoderArchitecture::Mistral),
                ("Qwen2", DecoderArchitecture::Qwen2),
            ]
            .into_iter()
            .find(|(prefix, _)| {
                class
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with("For"))
            })
            .map(|(_, a)| a)
        })
    }

    /// The `model_type` string transformers writes for this family.
    pub fn model_type(self) -> &'static str {
        match self {
            DecoderArchitecture::Llama => "llama",
            DecoderArchitecture::Mistral => "mistral",
            DecoderArchitecture::Qwen2 => "qwen2",
        }
    }

    /// The transformers class of the sequence classifier gms reproduces.
    pub fn classifier_class(self) -> &'static str {
        match self {
            DecoderArchitecture::Llama => "LlamaForSequenceClassification",
            DecoderArchitecture::Mistral => "MistralForSequenceClassification",
            DecoderArchitecture::Qwen2 => "Qwen2ForSequenceClassification",
        }
    }
}

/// The architecture of a model gms loads, encoder or decoder: what a strategy is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelArchitecture {
    /// A BERT-family encoder classifier.
    Encoder(Architecture),
    /// A Llama-family decoder classifier (base + LoRA adapter, or fine-tuned).
    Decoder(DecoderArchitecture),
}

impl ModelArchitecture {
    /// The substitutable modules of one layer, in candidate order.
    pub fn modules(self) -> &'static [Module] {
        match self {
            ModelArchitecture::Encoder(_) => &ENCODER_MODULES,
            ModelArchitecture::Decoder(_) => &DECODER_MODULES,
        }
    }

    /// The Hugging Face sequence-classification class (what a strategy file records).
    pub fn hf_class(self) -> &'static str {
        match self {
            ModelArchitecture::Encoder(a) => a.hf_class(),
            ModelArchitecture::Decoder(a) => a.classifier_class(),
        }
    }

    /// Parses [`Self::hf_class`].
    pub fn from_hf_class(name: &str) -> Option<ModelArchitecture> {
        Architecture::from_hf_class(name)
            .map(ModelArchitecture::Encoder)
            .or_else(|| {
                [
                    DecoderArchitecture::Llama,
                    DecoderArchitecture::Mistral,
                    DecoderArchitecture::Qwen2,
                ]
                .into_iter()
                .find(|a| a.classifier_class() == name)
                .map(ModelArchitecture::Decoder)
            })
    }

    /// Full, layer-qualified checkpoint path of a module (see [`Architecture::module_path`]).
    pub fn module_path(self, layer: usize, module: Module) -> String {
        match self {
            ModelArchitecture::Encoder(a) => a.module_path(layer, module),
            ModelArchitecture::Decoder(_) => module.decoder_path(layer),
        }
    }

    /// `encoder` or `decoder`, for messages.
    pub fn family(self) -> &'static str {
        match self {
            ModelArchitecture::Encoder(_) => "encoder",
            ModelArchitecture::Decoder(_) => "decoder",
        }
    }
}

impl fmt::Display for ModelArchitecture {
    /// E.g. `LlamaForSequenceClassification (decoder; modules QKVOGUD)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}; modules {})",
            self.hf_class(),
            self.family(),
            letters(self.modules())
        )
    }
}

/// The encoder families gms can load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
            // Decoder-only modules have no encoder name; a module list never asks for them.
            (_, Module::G | Module::U | Module::D) => "",
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
            ENCODER_MODULES
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
        for m in Module::VARIANTS {
            assert_eq!(Module::from_letter(m.letter()), Some(m));
        }
        assert_eq!(Module::from_letter('x'), None);
        assert_eq!(letters(&ENCODER_MODULES), "QKVOFP");
        assert_eq!(letters(&DECODER_MODULES), "QKVOGUD");
    }

    /// A matrix lists its cells in enum order; that must be every architecture's candidate
    /// order.
    #[test]
    fn every_module_list_is_in_enum_order() {
        for list in [&ENCODER_MODULES[..], &DECODER_MODULES[..]] {
            assert!(list.windows(2).all(|w| w[0] < w[1]), "{}", letters(list));
        }
    }

    #[test]
    fn decoder_names() {
        assert_eq!(Module::G.decoder_path(3), "model.layers.3.mlp.gate_proj");
        assert_eq!(Module::O.decoder_path(0), "model.layers.0.self_attn.o_proj");
        assert_eq!(Module::from_proj_name("down_proj"), Some(Module::D));
        assert_eq!(Module::from_proj_name("intermediate"), None);
        assert_eq!(Module::F.proj_name(), None);
        let llama = ModelArchitecture::Decoder(DecoderArchitecture::Llama);
        assert_eq!(
            ModelArchitecture::from_hf_class("LlamaForSequenceClassification"),
            Some(llama)
        );
        assert_eq!(
            ModelArchitecture::from_hf_class("BertForSequenceClassification"),
            Some(ModelArchitecture::Encoder(Architecture::Bert))
        );
    }
}
