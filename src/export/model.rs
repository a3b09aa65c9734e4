//! Writing the purified model: the victim's folder with the chosen modules from the proxy.

use crate::error::{GmsError, Result};
use crate::model::folder::{
    copy_config_and_tokenizer, for_each_tensor, write_safetensors, ModelFolder,
};
use crate::model::SubstitutionMatrix;
use candle_core::Tensor;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// Writes an HF folder at `out`: the victim's config and tokenizer files (nothing else of the
/// victim's: see [`copy_config_and_tokenizer`]), and one `model.safetensors` in the victim's
/// storage dtype with `matrix`'s cells (weight and bias) taken from the proxy. Atomic: `out`
/// appears complete or not at all.
pub fn write_purified_model(
    victim: &ModelFolder,
    proxy: &ModelFolder,
    matrix: &SubstitutionMatrix,
    out: &Path,
) -> Result<()> {
    let config = &victim.config;
    victim.check_pair(proxy)?;
    if matrix.num_layers() != config.layers {
        return Err(GmsError::bad_file(
            &victim.dir,
            format!(
                "the strategy has {} layers, the model {}",
                matrix.num_layers(),
                config.layers
            ),
            "use the strategy found for this victim",
        ));
    }
    let arch = config.architecture;
    let mut tensors: BTreeMap<String, Tensor> = BTreeMap::new();
    for file in &victim.weight_files {
        for_each_tensor(file, |name, t| {
            tensors.insert(name.to_string(), t);
            Ok(())
        })?;
    }
    let wanted: HashSet<String> = matrix
        .cells()
        .into_iter()
        .flat_map(|(l, m)| {
            let p = arch.module_path(l, m);
            [format!("{p}.weight"), format!("{p}.bias")]
        })
        .collect();
    let mut taken = 0;
    for file in &proxy.weight_files {
        for_each_tensor(file, |name, t| {
            if wanted.contains(name) {
                let Some(own) = tensors.get(name) else {
                    return Err(GmsError::bad_file(
                        &victim.dir,
                        format!("missing tensor {name}"),
                        "re-save the victim with transformers",
                    ));
                };
                if own.dims() != t.dims() {
                    return Err(GmsError::Mismatch {
                        victim: victim.dir.clone(),
                        proxy: proxy.dir.clone(),
                        problem: format!("{name} has shape {:?} vs {:?}", own.dims(), t.dims()),
                    });
                }
                let t = t.to_dtype(own.dtype())?;
                tensors.insert(name.to_string(), t);
                taken += 1;
            }
            Ok(())
        })?;
    }
    if taken != wanted.len() {
        return Err(GmsError::bad_file(
            &proxy.dir,
            format!(
                "only {taken} of the {} substituted tensors were found",
                wanted.len()
            ),
            "the proxy checkpoint is incomplete; re-save it",
        ));
    }
    crate::atomic::write_dir(out, |tmp| {
        copy_config_and_tokenizer(&victim.dir, tmp)?;
        write_safetensors(&tmp.join("model.safetensors"), &tensors)
    })
}
