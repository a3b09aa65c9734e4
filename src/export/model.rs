//! Writing the purified model: the victim with the chosen modules from the proxy.
//!
//! - Encoders and fully fine-tuned decoders: an HF folder, the victim's tensors with each
//!   chosen module's weight and bias from the proxy ([`write_purified_model`]).
//! - PEFT adapters: a PEFT adapter folder, the victim's adapter with each chosen module's LoRA
//!   pair from the proxy adapter and the victim's score head ([`write_purified_adapter`]); or,
//!   merged, an HF `…ForSequenceClassification` folder of base + that adapter
//!   ([`write_merged_adapter`]).
//!
//! Every output appears atomically; inputs are only read.

use crate::error::{GmsError, Result};
use crate::model::adapter::{lora_name, AdapterConfig, PEFT_PREFIX};
use crate::model::decoder_folder::DecoderFolder;
use crate::model::folder::{
    copy_config_and_tokenizer, copy_tokenizer_files, for_each_tensor, write_safetensors,
    ModelFolder,
};
use crate::model::{ModelArchitecture, ModelSource, SubstitutionMatrix, DECODER_MODULES};
use candle_core::{DType, Tensor};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// Writes the purified model of `victim` and `proxy` under `matrix` at `out`: for adapters a
/// PEFT adapter folder, or with `merged` an HF folder of base + that adapter; else an HF
/// folder like the victim's. `matrix` must fit the victim (see
/// [`crate::gms::report::StrategyReport`]'s checks in `export::strategy`).
pub fn write_purified(
    victim: &ModelSource,
    proxy: &ModelSource,
    matrix: &SubstitutionMatrix,
    out: &Path,
    merged: bool,
) -> Result<()> {
    let not_adapters = || GmsError::BadArgument {
        flag: "--merged",
        value: victim.dir().display().to_string(),
        problem: "merging is for PEFT adapters; this model is written as a full HF folder anyway"
            .into(),
    };
    match (victim, proxy) {
        (ModelSource::Encoder(v), ModelSource::Encoder(p)) => {
            if merged {
                return Err(not_adapters());
            }
            write_purified_model(v, p, matrix, out)
        }
        (
            ModelSource::Decoder {
                base: v,
                adapter: None,
            },
            ModelSource::Decoder {
                base: p,
                adapter: None,
            },
        ) => {
            if merged {
                return Err(not_adapters());
            }
            write_purified_decoder(v, p, matrix, out)
        }
        (
            ModelSource::Decoder {
                base,
                adapter: Some(v),
            },
            ModelSource::Decoder {
                adapter: Some(p), ..
            },
        ) => {
            if merged {
                write_merged_adapter(base, v, p, matrix, out)
            } else {
                write_purified_adapter(v, p, matrix, out)
            }
        }
        _ => Err(GmsError::Mismatch {
            victim: victim.dir().to_path_buf(),
            proxy: proxy.dir().to_path_buf(),
            problem: "they are not two models of one kind (two encoders, two fine-tuned decoders or two PEFT adapters)".into(),
        }),
    }
}

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
    check_layers(&victim.dir, config.layers, matrix)?;
    let arch = ModelArchitecture::Encoder(config.architecture);
    write_substituted(
        (&victim.dir, &victim.weight_files),
        (&proxy.dir, &proxy.weight_files),
        arch,
        matrix,
        out,
    )
}

/// [`write_purified_model`] for two fully fine-tuned decoders (`…ForSequenceClassification`
/// folders): the victim's tensors with each chosen module's weight (and bias, where the
/// architecture has one) from the proxy.
pub fn write_purified_decoder(
    victim: &DecoderFolder,
    proxy: &DecoderFolder,
    matrix: &SubstitutionMatrix,
    out: &Path,
) -> Result<()> {
    if let Some(problem) = victim.config.body_mismatch(&proxy.config) {
        return Err(GmsError::Mismatch {
            victim: victim.dir.clone(),
            proxy: proxy.dir.clone(),
            problem,
        });
    }
    check_layers(&victim.dir, victim.config.layers, matrix)?;
    let arch = ModelArchitecture::Decoder(victim.config.architecture);
    write_substituted(
        (&victim.dir, &victim.weight_files),
        (&proxy.dir, &proxy.weight_files),
        arch,
        matrix,
        out,
    )
}

/// The victim folder's tensors with each `matrix` module's weight and bias from the proxy,
/// written at `out` as one safetensors file beside the victim's config and tokenizer.
fn write_substituted(
    victim: (&Path, &[PathBuf]),
    proxy: (&Path, &[PathBuf]),
    arch: ModelArchitecture,
    matrix: &SubstitutionMatrix,
    out: &Path,
) -> Result<()> {
    let tensors = substituted_tensors(
        victim,
        proxy,
        &module_tensor_names(arch, matrix, &[".weight", ".bias"]),
        true,
    )?;
    crate::atomic::write_dir(out, |tmp| {
        copy_config_and_tokenizer(victim.0, tmp)?;
        write_safetensors(&tmp.join("model.safetensors"), &tensors)
    })
}

/// Writes a PEFT adapter folder at `out`: the victim adapter's `adapter_config.json` (and
/// tokenizer files, if it saved any) and an `adapter_model.safetensors` holding every victim
/// tensor — the saved `score` head included — with each chosen module's `lora_A` and `lora_B`
/// from the proxy adapter. PEFT loads it over the same base unchanged. Where the proxy's rank
/// or `lora_alpha` differs from the victim's, the config gains `rank_pattern` /
/// `alpha_pattern` entries naming each such module by its full path.
pub fn write_purified_adapter(
    victim: &Path,
    proxy: &Path,
    matrix: &SubstitutionMatrix,
    out: &Path,
) -> Result<()> {
    let (vc, pc) = (adapter_config(victim)?, adapter_config(proxy)?);
    let names: Vec<String> = matrix
        .cells()
        .into_iter()
        .flat_map(|(l, m)| [lora_name(l, m, 0), lora_name(l, m, 1)])
        .collect();
    let vfile = victim.join("adapter_model.safetensors");
    let pfile = proxy.join("adapter_model.safetensors");
    let tensors = substituted_tensors(
        (victim, std::slice::from_ref(&vfile)),
        (proxy, std::slice::from_ref(&pfile)),
        &names,
        false,
    )?;
    let mut config = read_json(&victim.join("adapter_config.json"))?;
    let pattern_error = |dir: &Path, problem: String| {
        GmsError::bad_file(
            dir.join("adapter_config.json"),
            problem,
            "give each module one rank_pattern / alpha_pattern key",
        )
    };
    for (l, m) in matrix.cells() {
        let path = m.decoder_path(l);
        let theirs = pc
            .rank_and_alpha(&path)
            .map_err(|p| pattern_error(proxy, p))?;
        let ours = vc
            .rank_and_alpha(&path)
            .map_err(|p| pattern_error(victim, p))?;
        if theirs == ours {
            continue;
        }
        if pc.use_rslora != vc.use_rslora {
            return Err(GmsError::Mismatch {
                victim: victim.to_path_buf(),
                proxy: proxy.to_path_buf(),
                problem: "one adapter uses rsLoRA scaling and the other not; PEFT cannot mix them in one adapter".into(),
            });
        }
        // The module's full path: PEFT matches `(.*\.)?(key)$`, so it names this module only.
        config["rank_pattern"][&path] = theirs.0.into();
        config["alpha_pattern"][&path] = theirs.1.into();
    }
    crate::atomic::write_dir(out, |tmp| {
        copy_tokenizer_files(victim, tmp)?;
        crate::atomic::write_json(&tmp.join("adapter_config.json"), &config)?;
        write_safetensors(&tmp.join("adapter_model.safetensors"), &tensors)
    })
}

/// Writes an HF `…ForSequenceClassification` folder at `out`: the base's tensors (without
/// `lm_head`) in their stored dtype, each adapted module's weight merged with its LoRA pair —
/// the proxy adapter's for the chosen cells, the victim's elsewhere — as
/// `W + s·B·A` computed in f32, the victim's `score` head, the base's tokenizer files, and
/// the base's `config.json` naming the classifier class and label count.
pub fn write_merged_adapter(
    base: &DecoderFolder,
    victim: &Path,
    proxy: &Path,
    matrix: &SubstitutionMatrix,
    out: &Path,
) -> Result<()> {
    check_layers(&base.dir, base.config.layers, matrix)?;
    let (vc, pc) = (adapter_config(victim)?, adapter_config(proxy)?);
    let read = |dir: &Path| -> Result<BTreeMap<String, Tensor>> {
        let mut map = BTreeMap::new();
        for_each_tensor(&dir.join("adapter_model.safetensors"), |name, t| {
            map.insert(name.to_string(), t);
            Ok(())
        })?;
        Ok(map)
    };
    let (va, pa) = (read(victim)?, read(proxy)?);
    let score = va
        .get(&format!("{PEFT_PREFIX}score.weight"))
        .cloned()
        .ok_or_else(|| {
            GmsError::bad_file(
                victim.join("adapter_model.safetensors"),
                format!("missing tensor {PEFT_PREFIX}score.weight"),
                "merging needs the adapter's saved score head (train it with task_type SEQ_CLS)",
            )
        })?;
    let labels = score.dims().first().copied().unwrap_or(2);
    let mut tensors: BTreeMap<String, Tensor> = BTreeMap::new();
    let mut dtype = DType::F32;
    for file in &base.weight_files {
        for_each_tensor(file, |name, t| {
            if name.starts_with("model.") && !name.ends_with("rotary_emb.inv_freq") {
                if name == "model.embed_tokens.weight" {
                    dtype = t.dtype();
                }
                tensors.insert(name.to_string(), t);
            }
            Ok(())
        })?;
    }
    for l in 0..base.config.layers {
        for m in DECODER_MODULES {
            let (dir, pairs, config) = if matrix.get(l, m) {
                (proxy, &pa, &pc)
            } else {
                (victim, &va, &vc)
            };
            let (_, scale) = config
                .rank_and_scale(&m.decoder_path(l))
                .map_err(|problem| {
                    GmsError::bad_file(
                        dir.join("adapter_config.json"),
                        problem,
                        "give each module one rank_pattern / alpha_pattern key",
                    )
                })?;
            let (Some(a), Some(b)) = (
                pairs.get(&lora_name(l, m, 0)),
                pairs.get(&lora_name(l, m, 1)),
            ) else {
                continue;
            };
            let name = format!("{}.weight", m.decoder_path(l));
            let Some(w) = tensors.get(&name) else {
                return Err(GmsError::bad_file(
                    &base.dir,
                    format!("missing tensor {name}"),
                    "the base checkpoint is incomplete; re-save it",
                ));
            };
            let delta = (b.to_dtype(DType::F32)?.matmul(&a.to_dtype(DType::F32)?)? * scale)?;
            if delta.dims() != w.dims() {
                return Err(GmsError::AdapterBase {
                    adapter: dir.to_path_buf(),
                    base: base.dir.clone(),
                    problem: format!(
                        "its pair for {} makes {:?}, the weight is {:?}",
                        m.decoder_path(l),
                        delta.dims(),
                        w.dims()
                    ),
                });
            }
            let merged = (w.to_dtype(DType::F32)? + delta)?.to_dtype(w.dtype())?;
            tensors.insert(name, merged);
        }
    }
    tensors.insert("score.weight".into(), score.to_dtype(dtype)?);
    let mut config = read_json(&base.dir.join("config.json"))?;
    config["architectures"] = serde_json::json!([base.config.architecture.classifier_class()]);
    let id2label: serde_json::Map<String, serde_json::Value> = (0..labels)
        .map(|i| (i.to_string(), format!("LABEL_{i}").into()))
        .collect();
    let label2id: serde_json::Map<String, serde_json::Value> = (0..labels)
        .map(|i| (format!("LABEL_{i}"), i.into()))
        .collect();
    config["id2label"] = id2label.into();
    config["label2id"] = label2id.into();
    if config["pad_token_id"].is_null() {
        // What the classifier pools by (pad, else eos; docs/algorithm.md §Evaluation
        // conventions), made explicit so transformers pools the same rows.
        if let Some(pad) = base.config.pad_id() {
            config["pad_token_id"] = pad.into();
        }
    }
    crate::atomic::write_dir(out, |tmp| {
        copy_tokenizer_files(&base.dir, tmp)?;
        copy_tokenizer_files(victim, tmp)?;
        crate::atomic::write_json(&tmp.join("config.json"), &config)?;
        write_safetensors(&tmp.join("model.safetensors"), &tensors)
    })
}

fn adapter_config(dir: &Path) -> Result<AdapterConfig> {
    AdapterConfig::from_file(&dir.join("adapter_config.json"))
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| GmsError::bad_file(path, e.to_string(), "check the file's permissions"))?;
    serde_json::from_str(&text)
        .map_err(|e| GmsError::bad_file(path, format!("invalid JSON ({e})"), "re-save it"))
}

fn check_layers(dir: &Path, layers: usize, matrix: &SubstitutionMatrix) -> Result<()> {
    if matrix.num_layers() != layers {
        return Err(GmsError::bad_file(
            dir,
            format!(
                "the strategy has {} layers, the model {layers}",
                matrix.num_layers()
            ),
            "use the strategy found for this victim",
        ));
    }
    Ok(())
}

/// Tensor names of `matrix`'s modules under `arch`, one per suffix.
fn module_tensor_names(
    arch: ModelArchitecture,
    matrix: &SubstitutionMatrix,
    suffixes: &[&str],
) -> Vec<String> {
    matrix
        .cells()
        .into_iter()
        .flat_map(|(l, m)| {
            let p = arch.module_path(l, m);
            suffixes.iter().map(move |s| format!("{p}{s}"))
        })
        .collect()
}

/// Every tensor of the victim's files, with the tensors named in `wanted` taken from the
/// proxy's (converted to the victim's dtype). A name neither has (a bias the architecture
/// lacks) is skipped; one only one side has is an error. With `same_shape`, a taken tensor
/// must have the victim's shape (dense weights); LoRA pairs of another rank may differ.
fn substituted_tensors(
    victim: (&Path, &[PathBuf]),
    proxy: (&Path, &[PathBuf]),
    wanted: &[String],
    same_shape: bool,
) -> Result<BTreeMap<String, Tensor>> {
    let mut tensors: BTreeMap<String, Tensor> = BTreeMap::new();
    for file in victim.1 {
        for_each_tensor(file, |name, t| {
            tensors.insert(name.to_string(), t);
            Ok(())
        })?;
    }
    let wanted: HashSet<&str> = wanted.iter().map(String::as_str).collect();
    let mut taken = HashSet::new();
    for file in proxy.1 {
        for_each_tensor(file, |name, t| {
            if !wanted.contains(name) {
                return Ok(());
            }
            let Some(own) = tensors.get(name) else {
                return Err(GmsError::Mismatch {
                    victim: victim.0.to_path_buf(),
                    proxy: proxy.0.to_path_buf(),
                    problem: format!("the proxy has {name}, the victim does not"),
                });
            };
            if same_shape && own.dims() != t.dims() {
                return Err(GmsError::Mismatch {
                    victim: victim.0.to_path_buf(),
                    proxy: proxy.0.to_path_buf(),
                    problem: format!("{name} has shape {:?} vs {:?}", own.dims(), t.dims()),
                });
            }
            let t = t.to_dtype(own.dtype())?;
            tensors.insert(name.to_string(), t);
            taken.insert(name.to_string());
            Ok(())
        })?;
    }
    if let Some(missing) = wanted
        .iter()
        .find(|n| !taken.contains(**n) && tensors.contains_key(**n))
    {
        return Err(GmsError::bad_file(
            proxy.0,
            format!("missing tensor {missing}, which the strategy takes from the proxy"),
            "use the proxy the strategy was found with (a complete checkpoint or adapter)",
        ));
    }
    Ok(tensors)
}
