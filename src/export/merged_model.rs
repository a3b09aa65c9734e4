//! Writing a model folder from tensors in memory (a merge baseline, or the base folder mergekit
//! needs): the victim's config and tokenizer files with one `model.safetensors`.

use crate::error::{GmsError, Result};
use crate::model::folder::ModelFolder;
use candle_core::{DType, Tensor};
use std::collections::BTreeMap;
use std::path::Path;

/// The Hugging Face name of a storage dtype (`config.json`'s `dtype`, mergekit's `dtype`).
pub fn hf_dtype_name(dtype: DType) -> &'static str {
    match dtype {
        DType::F16 => "float16",
        DType::BF16 => "bfloat16",
        DType::F64 => "float64",
        _ => "float32",
    }
}

/// Writes an HF folder at `out`: the victim's side files, its `config.json` with the storage
/// dtype set to `dtype`, and `tensors` (floating ones converted to `dtype`) as one
/// `model.safetensors`. Atomic: `out` appears complete or not at all.
pub fn write_model_folder(
    victim: &ModelFolder,
    tensors: &BTreeMap<String, Tensor>,
    dtype: DType,
    out: &Path,
) -> Result<()> {
    let config_path = victim.dir.join("config.json");
    let mut config: serde_json::Value = std::fs::read_to_string(&config_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .ok_or_else(|| {
            GmsError::bad_file(
                &config_path,
                "unreadable",
                "re-save the model with transformers",
            )
        })?;
    if let Some(c) = config.as_object_mut() {
        // transformers ≥ 4.56 writes `dtype`, older versions `torch_dtype`; set whichever is there.
        let keys: Vec<&str> = ["dtype", "torch_dtype"]
            .into_iter()
            .filter(|k| c.contains_key(*k))
            .collect();
        for k in if keys.is_empty() { vec!["dtype"] } else { keys } {
            c.insert(k.to_string(), hf_dtype_name(dtype).into());
        }
    }
    let converted: BTreeMap<String, Tensor> = tensors
        .iter()
        .map(|(name, t)| {
            let t = if t.dtype().is_float() {
                t.to_dtype(dtype)?
            } else {
                t.clone()
            };
            Ok((name.clone(), t))
        })
        .collect::<Result<_>>()?;
    crate::atomic::write_dir(out, |tmp| {
        crate::model::folder::copy_config_and_tokenizer(&victim.dir, tmp)?;
        crate::atomic::write_json(&tmp.join("config.json"), &config)?;
        crate::model::folder::write_safetensors(&tmp.join("model.safetensors"), &converted)
    })
}
