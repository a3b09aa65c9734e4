//! Loading Hugging Face classifiers — encoders (BERT, RoBERTa, DistilBERT) and Llama-family
//! decoders with or without a PEFT LoRA adapter — and running them: configs, checkpoint
//! folders, the forward passes, tokenization, the architecture table and the substitution
//! views.

pub mod adapter;
pub mod arch;
pub mod config;
pub mod decoder;
pub mod decoder_config;
pub mod decoder_folder;
pub mod decoder_tokenize;
pub mod encoder;
pub mod folder;
pub mod gelu;
pub mod layered;
pub mod lora;
pub mod random;
pub mod random_decoder;
pub mod source;
pub mod substitution;
pub mod threads;
pub mod tokenize;

pub use arch::{
    letters, Architecture, ModelArchitecture, Module, DECODER_MODULES, ENCODER_MODULES,
};
pub use config::ModelConfig;
pub use encoder::Classifier;
pub use folder::ModelFolder;
pub use layered::LayeredClassifier;
pub use source::{LoadedPair, ModelSource};
pub use substitution::{weight_view, SubstitutionMatrix};
pub use tokenize::BatchInput;

use crate::error::Result;
use candle_core::Device;
use std::path::Path;
use tokenize::TextEncoder;

/// A model folder loaded for computation: config, weights as a classifier, tokenizer.
pub struct LoadedModel {
    /// Where it came from.
    pub folder: ModelFolder,
    /// The classifier (f32 on the chosen device).
    pub classifier: Classifier,
}

impl LoadedModel {
    /// Opens, validates and loads the model folder `dir` onto `device`.
    pub fn load(dir: &Path, device: &Device) -> Result<LoadedModel> {
        let folder = ModelFolder::open(dir)?;
        let tensors = folder.load_tensors(device)?;
        let classifier = Classifier::from_tensors(&folder.config, &tensors, dir)?;
        Ok(LoadedModel { folder, classifier })
    }

    /// The folder's tokenizer, set up for evaluation.
    pub fn text_encoder(&self) -> Result<TextEncoder> {
        TextEncoder::load(&self.folder.dir, &self.folder.config)
    }
}
