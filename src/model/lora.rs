//! LoRA linear modules: a base weight with its adapter's pair kept apart (`W·x (+b) +
//! s·B(A·x)`), and where each of the seven decoder modules sits. Shared by the decoder's
//! forward ([`crate::model::decoder`]) and the PEFT adapter reader
//! ([`crate::model::adapter`]), which builds the pairs.

use crate::error::Result;
use crate::model::arch::{Module, DECODER_MODULES};
use crate::model::decoder_config::DecoderConfig;
use candle_core::Tensor;

/// `(out, in)` of decoder module `m`'s weight under `c`.
pub fn module_shape(m: Module, c: &DecoderConfig) -> (usize, usize) {
    match m {
        Module::Q => (c.q_width(), c.hidden),
        Module::K | Module::V => (c.kv_width(), c.hidden),
        Module::O => (c.hidden, c.q_width()),
        Module::G | Module::U | Module::F => (c.intermediate, c.hidden),
        Module::D | Module::P => (c.hidden, c.intermediate),
    }
}

/// Slot of a decoder module in [`crate::model::decoder::DecoderLayer::modules`] and the adapter's per-layer pairs
/// (its position in [`DECODER_MODULES`]).
pub fn slot(m: Module) -> Option<usize> {
    m.position_in(&DECODER_MODULES)
}

/// A LoRA pair of one module: adds `scale · B(A·x)`.
#[derive(Debug, Clone)]
pub struct LoraPair {
    /// `lora_A`, `[r, in]`, f32.
    pub a: Tensor,
    /// `lora_B`, `[out, r]`, f32.
    pub b: Tensor,
    /// `lora_alpha / r` (rsLoRA: `lora_alpha / √r`).
    pub scale: f64,
}

impl LoraPair {
    /// The update `scale · B(A·x)` for `x` of shape `[n, in]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok((x.matmul(&self.a.t()?)?.matmul(&self.b.t()?)? * self.scale)?)
    }
}

/// A linear module `y = x·Wᵀ (+ b) (+ s·B(A·x))`, the LoRA pair kept apart from `W`.
#[derive(Debug, Clone)]
pub struct LoraLinear {
    /// `[out, in]` base weight, in its stored dtype or f32 (converted per use when they
    /// differ from the input's).
    pub weight: Tensor,
    /// `[out]` bias (Qwen2's q/k/v; Llama with `attention_bias`/`mlp_bias`).
    pub bias: Option<Tensor>,
    /// The adapter's pair for this module, if it adapts it.
    pub lora: Option<LoraPair>,
}

impl LoraLinear {
    /// Applies the module to `x` of shape `[n, in]` (f32).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let w = if self.weight.dtype() == x.dtype() {
            self.weight.clone()
        } else {
            self.weight.to_dtype(x.dtype())?
        };
        let mut y = x.matmul(&w.t()?)?;
        if let Some(b) = &self.bias {
            y = y.broadcast_add(b)?;
        }
        if let Some(lora) = &self.lora {
            y = (y + lora.forward(x)?)?;
        }
        Ok(y)
    }

    /// The same module with `lora` in place of its own pair (base tensors shared).
    pub fn with_lora(&self, lora: Option<LoraPair>) -> LoraLinear {
        LoraLinear {
            weight: self.weight.clone(),
            bias: self.bias.clone(),
            lora,
        }
    }
}
