//! What the GMS evaluator needs from a classifier of either family, so one evaluator (and one
//! search) serves encoders and decoders: the embeddings, any layer run on hidden states at a
//! layer boundary — substituted or not — with a per-batch context built once, and the head.

use crate::error::Result;
use crate::model::arch::{ModelArchitecture, ENCODER_MODULES};
use crate::model::decoder::{self, DecoderClassifier, DecoderContext, DecoderLayer};
use crate::model::encoder::{Classifier, EncoderLayer};
use crate::model::substitution::{self, SubstitutionMatrix};
use crate::model::tokenize::BatchInput;
use crate::model::tokenize::EncodedSet;
use candle_core::{DType, Device, Tensor};

/// A classifier that runs layer by layer and substitutes modules from a donor of the same
/// architecture without copying weights.
pub trait LayeredClassifier: Clone + Send + Sync + 'static {
    /// One layer, possibly with some modules from the donor.
    type Layer: Send + Sync;
    /// What every layer of one batch reuses: the encoder's attention bias; the decoder's
    /// causal and padding masks, rotary tables and pooled positions.
    type Context: Send + Sync;

    /// The architecture (and with it the module list).
    fn architecture(&self) -> ModelArchitecture;
    /// Number of transformer layers.
    fn num_layers(&self) -> usize;
    /// The device the weights live on.
    fn device(&self) -> &Device;
    /// The dtype activations are computed in.
    fn dtype(&self) -> DType;
    /// The per-batch context of `x`.
    fn context(&self, x: &BatchInput) -> Result<Self::Context>;
    /// Hidden states at layer boundary 0.
    fn embed(&self, x: &BatchInput) -> Result<Tensor>;
    /// Layer `l` of `self` (the victim) with `matrix`'s cells of that layer from `donor`:
    /// reference-counted clones, no weight copy.
    fn substituted_layer(&self, donor: &Self, matrix: &SubstitutionMatrix, l: usize)
        -> Self::Layer;
    /// Runs `layer` as layer `index` on `h`; `last` computes only what the head reads.
    fn layer_forward(
        &self,
        layer: &Self::Layer,
        index: usize,
        h: &Tensor,
        ctx: &Self::Context,
        last: bool,
    ) -> Result<Tensor>;
    /// Logits from the states after the last layer.
    fn head(&self, h: &Tensor, x: &BatchInput) -> Result<Tensor>;
    /// The whole model `self` with `matrix`'s cells from `donor` (a view, no weight copy).
    fn view(&self, donor: &Self, matrix: &SubstitutionMatrix) -> Self;
    /// Logits of every batch of `set`.
    fn set_logits(&self, set: &EncodedSet) -> Result<Vec<Tensor>>;
    /// The cells `donor` can give `self`: every module of every layer for two fine-tuned
    /// models; for two LoRA adapters over one base, the cells where both have a pair (the
    /// others are never substituted).
    fn substitutable(&self, donor: &Self) -> SubstitutionMatrix;
}

impl LayeredClassifier for Classifier {
    type Layer = EncoderLayer;
    type Context = Tensor;

    fn architecture(&self) -> ModelArchitecture {
        ModelArchitecture::Encoder(self.config.architecture)
    }

    fn num_layers(&self) -> usize {
        self.layers.len()
    }

    fn device(&self) -> &Device {
        Classifier::device(self)
    }

    fn dtype(&self) -> DType {
        Classifier::dtype(self)
    }

    fn context(&self, x: &BatchInput) -> Result<Tensor> {
        Ok(x.attention_bias.clone())
    }

    fn embed(&self, x: &BatchInput) -> Result<Tensor> {
        Classifier::embed(self, x)
    }

    fn substituted_layer(
        &self,
        donor: &Self,
        matrix: &SubstitutionMatrix,
        l: usize,
    ) -> EncoderLayer {
        substitution::substituted_layer(&self.layers[l], &donor.layers[l], matrix, l)
    }

    fn layer_forward(
        &self,
        layer: &EncoderLayer,
        _index: usize,
        h: &Tensor,
        bias: &Tensor,
        last: bool,
    ) -> Result<Tensor> {
        Classifier::layer_forward(self, layer, h, bias, last)
    }

    fn head(&self, h: &Tensor, _x: &BatchInput) -> Result<Tensor> {
        Classifier::head(self, h)
    }

    fn view(&self, donor: &Self, matrix: &SubstitutionMatrix) -> Self {
        substitution::weight_view(self, donor, matrix)
    }

    fn set_logits(&self, set: &EncodedSet) -> Result<Vec<Tensor>> {
        Classifier::set_logits(self, set)
    }

    fn substitutable(&self, _donor: &Self) -> SubstitutionMatrix {
        SubstitutionMatrix::full(&ENCODER_MODULES, self.layers.len())
    }
}

impl LayeredClassifier for DecoderClassifier {
    type Layer = DecoderLayer;
    type Context = DecoderContext;

    fn architecture(&self) -> ModelArchitecture {
        ModelArchitecture::Decoder(self.config.architecture)
    }

    fn num_layers(&self) -> usize {
        self.layers.len()
    }

    fn device(&self) -> &Device {
        DecoderClassifier::device(self)
    }

    fn dtype(&self) -> DType {
        DType::F32
    }

    fn context(&self, x: &BatchInput) -> Result<DecoderContext> {
        DecoderClassifier::context(self, x)
    }

    fn embed(&self, x: &BatchInput) -> Result<Tensor> {
        DecoderClassifier::embed(self, x)
    }

    fn substituted_layer(
        &self,
        donor: &Self,
        matrix: &SubstitutionMatrix,
        l: usize,
    ) -> DecoderLayer {
        decoder::substituted_layer(&self.layers[l], &donor.layers[l], |m| matrix.get(l, m))
    }

    fn layer_forward(
        &self,
        layer: &DecoderLayer,
        index: usize,
        h: &Tensor,
        ctx: &DecoderContext,
        last: bool,
    ) -> Result<Tensor> {
        DecoderClassifier::layer_forward(self, layer, index, h, ctx, last)
    }

    fn head(&self, h: &Tensor, x: &BatchInput) -> Result<Tensor> {
        DecoderClassifier::head(self, h, x)
    }

    fn view(&self, donor: &Self, matrix: &SubstitutionMatrix) -> Self {
        decoder::lora_view(self, donor, |l, m| matrix.get(l, m))
    }

    fn set_logits(&self, set: &EncodedSet) -> Result<Vec<Tensor>> {
        DecoderClassifier::set_logits(self, set)
    }

    fn substitutable(&self, donor: &Self) -> SubstitutionMatrix {
        decoder::substitutable(self, donor)
    }
}
