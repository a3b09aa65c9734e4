//! Writing the purified model: the victim's folder with the chosen modules from the proxy.

use crate::error::{GmsError, Result};
use crate::model::folder::{for_each_tensor, ModelFolder};
use crate::model::SubstitutionMatrix;
use candle_core::Tensor;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Writes an HF folder at `out`: the victim's config and tokenizer files, and one
/// `model.safetensors` in the victim's storage dtype with `matrix`'s cells (weight and bias)
/// taken from the proxy. Atomic: `out` appears complete or not at all.
pub fn write_purified_model(
    victim: &ModelFolder,
    proxy: &ModelFolder,
    matrix: &SubstitutionMatrix,
    out: &Path,
) -> Result<()> {
    let config = &victim.config;
    if let Some(problem) = config.body_mismatch(&proxy.config) {
        return Err(GmsError::Mismatch {
            victim: victim.dir.clone(),
            proxy: proxy.dir.clone(),
            problem,
        });
    }
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
    let wanted: HashMap<String, ()> = matrix
        .cells()
        .into_iter()
        .flat_map(|(l, m)| {
            let p = arch.module_path(l, m);
            [(format!("{p}.weight"), ()), (format!("{p}.bias"), ())]
        })
        .collect();
    let mut taken = 0;
    for file in &proxy.weight_files {
        for_each_tensor(file, |name, t| {
            if wanted.contains_key(name) {
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
    crate::export::atomic::write_dir(out, |tmp| {
        copy_side_files(&victim.dir, tmp)?;
        let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
        let path = tmp.join("model.safetensors");
        safetensors::serialize_to_file(tensors.iter(), Some(meta), &path)
            .map_err(|e| GmsError::output(&path, e))
    })
}

/// Copies config and tokenizer files (everything but weights) from `src` to `dst`.
pub(crate) fn copy_side_files(src: &Path, dst: &Path) -> Result<()> {
    let entries = std::fs::read_dir(src)
        .map_err(|e| GmsError::bad_file(src, e.to_string(), "check permissions"))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let weights = name.ends_with(".safetensors")
            || name == "model.safetensors.index.json"
            || name.ends_with(".bin")
            || name.ends_with(".h5");
        let side = [".json", ".txt", ".model"]
            .iter()
            .any(|e| name.ends_with(e));
        if side && !weights && entry.path().is_file() {
            std::fs::copy(entry.path(), dst.join(&*name))
                .map_err(|e| GmsError::output(dst.join(&*name), e))?;
        }
    }
    Ok(())
}
