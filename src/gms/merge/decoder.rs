//! Merge baselines of two LoRA adapters over one base: the same five methods as for encoders,
//! on the models the adapters make.
//!
//! An adapter turns each module it adapts into `W + ΔA` with `ΔA = s·B·A` (`s` its
//! `lora_alpha / r`); a module it leaves alone stays `W`. Merging "victim and proxy" therefore
//! means merging `W + Δv` with `W + Δp`, and the pre-trained base the base methods need is the
//! adapters' own base `W`: task arithmetic, TIES and DARE work on the task vectors `Δv`, `Δp`
//! themselves, with no `--base` to give. Each module is merged as the encoder merge merges a
//! tensor ([`merge_values`], under the tensor's checkpoint name, so DARE's masks are drawn per
//! tensor as there). The `score` head is the adapters' own (`modules_to_save`): linear merges
//! the two heads; the base methods keep the victim's, since the base has none (the encoder
//! rule for a tensor the base lacks). Embeddings and norms are the base's in both models.
//!
//! The result is a dense classifier: every merged module is a plain weight (no LoRA pair), so
//! it runs through the same forward pass and scoring as any fine-tuned decoder.

use super::models::merge_values;
use super::MergeParams;
use crate::error::Result;
use crate::model::arch::DECODER_MODULES;
use crate::model::decoder::DecoderClassifier;
use crate::model::lora::LoraLinear;
use candle_core::{DType, Tensor};

/// Why a decoder pair gets no merge baselines, or `None` when it does: two LoRA adapters over
/// one base (the pair the workbench loads for adapters) do; two fully fine-tuned decoders
/// do not, since merging them needs their pre-trained base, which gms does not load.
pub fn adapters_merge(victim: &DecoderClassifier, proxy: &DecoderClassifier) -> Option<String> {
    let adapted = |c: &DecoderClassifier| {
        c.layers
            .iter()
            .any(|l| l.modules.iter().any(|m| m.lora.is_some()))
    };
    if adapted(victim) || adapted(proxy) {
        None
    } else {
        Some(
            "merge baselines of decoders are built for LoRA adapters over one base; this pair \
             is fully fine-tuned"
                .into(),
        )
    }
}

/// `module`'s base weight `W` in f32, and the module as a dense f32 weight: `W + s·B·A` when
/// it carries a LoRA pair, else `W`.
fn dense(module: &LoraLinear) -> Result<(Tensor, Tensor)> {
    let w = module.weight.to_dtype(DType::F32)?;
    let full = match &module.lora {
        Some(pair) => (&w + (pair.b.matmul(&pair.a)? * pair.scale)?)?,
        None => w.clone(),
    };
    Ok((w, full))
}

fn values(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?.to_vec1::<f32>()?)
}

/// `victim` and `proxy` (two adapters over one base) merged per `params`: a classifier with the
/// victim's embeddings, norms and biases, every module a merged dense weight, and the merged
/// (linear) or the victim's (base methods) head.
pub fn merge_adapters(
    victim: &DecoderClassifier,
    proxy: &DecoderClassifier,
    params: &MergeParams,
) -> Result<DecoderClassifier> {
    let base_method = params.method.needs_base();
    let mut merged = victim.clone();
    for (l, layer) in merged.layers.iter_mut().enumerate() {
        for (slot, m) in DECODER_MODULES.iter().enumerate() {
            let v = &victim.layers[l].modules[slot];
            let p = &proxy.layers[l].modules[slot];
            if v.lora.is_none() && p.lora.is_none() {
                // Neither adapts it: both models compute the base weight, and so does a merge.
                continue;
            }
            let ((w, wv), (_, wp)) = (dense(v)?, dense(p)?);
            // Both adapters share the base: the victim's W is the proxy's.
            let base = if base_method { Some(values(&w)?) } else { None };
            let name = format!("{}.weight", m.decoder_path(l));
            let out = merge_values(&name, &values(&wv)?, &values(&wp)?, base.as_deref(), params);
            let weight = Tensor::from_vec(out, wv.dims(), wv.device())?;
            layer.modules[slot] = LoraLinear {
                weight,
                bias: v.bias.clone(),
                lora: None,
            };
        }
    }
    if !base_method {
        let ((_, hv), (_, hp)) = (dense(&victim.score)?, dense(&proxy.score)?);
        let out = merge_values("score.weight", &values(&hv)?, &values(&hp)?, None, params);
        merged.score = LoraLinear {
            weight: Tensor::from_vec(out, hv.dims(), hv.device())?,
            bias: victim.score.bias.clone(),
            lora: None,
        };
    }
    Ok(merged)
}
