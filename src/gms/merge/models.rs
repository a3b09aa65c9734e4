//! The whole-model merge: victim, proxy and (for the base methods) the pre-trained base,
//! memory-mapped and matched by tensor name.
//!
//! The output has exactly the victim's tensors. A base may be a plain encoder checkpoint
//! whose names lack the classifier's `bert.`/`roberta.`/`distilbert.` prefix (a `BertModel`
//! folder such as the kit's MiniLM base); a victim tensor is looked up under its own name,
//! then without that prefix. Tensors the base lacks must lie outside the embeddings and the
//! transformer layers (the head, often the pooler); they stay the victim's.

use super::arithmetic::{self, Combine};
use super::{MergeMethod, MergeParams};
use crate::error::{GmsError, Result};
use crate::model::folder::{find_weight_files, ModelFolder};
use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A model's safetensors files, memory-mapped, with a name → file index.
pub struct MappedWeights {
    files: Vec<(PathBuf, MmapedSafetensors)>,
    index: BTreeMap<String, usize>,
}

impl MappedWeights {
    /// Maps `files` (one checkpoint or its shards) and reads their headers.
    pub fn open(files: &[PathBuf]) -> Result<MappedWeights> {
        let mut mapped = Vec::with_capacity(files.len());
        let mut index = BTreeMap::new();
        for (i, path) in files.iter().enumerate() {
            // SAFETY: the mapping is read-only and gms never writes input folders; a file
            // changed by another process while mapped is outside what any loader can guard
            // against (as in model::folder).
            let st = unsafe { MmapedSafetensors::new(path) }.map_err(|e| {
                GmsError::bad_file(
                    path,
                    format!("cannot read safetensors ({e})"),
                    "the file is truncated or not safetensors; copy or re-save it",
                )
            })?;
            for (name, _) in st.tensors() {
                index.insert(name, i);
            }
            mapped.push((path.clone(), st));
        }
        Ok(MappedWeights {
            files: mapped,
            index,
        })
    }

    /// Tensor names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(String::as_str)
    }

    /// Whether the checkpoint holds `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// Stored shape of `name`.
    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        let (_, st) = &self.files[*self.index.get(name)?];
        st.get(name).ok().map(|v| v.shape().to_vec())
    }

    /// Whether `name` is stored as floating point (integer buffers are copied, not merged).
    pub fn is_float(&self, name: &str) -> bool {
        use safetensors::Dtype;
        let Some(&i) = self.index.get(name) else {
            return false;
        };
        self.files[i].1.get(name).is_ok_and(|v| {
            matches!(
                v.dtype(),
                Dtype::F16 | Dtype::BF16 | Dtype::F32 | Dtype::F64
            )
        })
    }

    /// `name` in its stored dtype, on the CPU.
    pub fn load(&self, name: &str) -> Result<Tensor> {
        let i = *self.index.get(name).expect("callers check names first");
        let (path, st) = &self.files[i];
        st.load(name, &Device::Cpu).map_err(|e| {
            GmsError::bad_file(
                path,
                format!("tensor {name}: {e}"),
                "the file is truncated or not safetensors; copy or re-save it",
            )
        })
    }

    /// `name` as flat f32 values, refusing NaN and infinities.
    pub fn load_f32(&self, name: &str) -> Result<Vec<f32>> {
        let values = self
            .load(name)?
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
            let path = &self.files[self.index[name]].0;
            return Err(GmsError::bad_file(
                path,
                format!("tensor {name} holds {v}"),
                "the model is corrupt (NaN/inf weights); retrain or re-export it",
            ));
        }
        Ok(values)
    }
}

/// The checkpoint-name root of an architecture's encoder body (`bert` in
/// `bert.encoder.layer.0…`), which plain encoder checkpoints (`BertModel`) omit.
/// Victim, proxy and optional base, opened and checked against each other.
pub struct MergeInputs {
    /// The victim's folder (config, side files): the output is shaped like it.
    pub victim: ModelFolder,
    /// The proxy's folder.
    pub proxy: ModelFolder,
    /// The base folder, when given.
    pub base_dir: Option<PathBuf>,
    victim_weights: MappedWeights,
    proxy_weights: MappedWeights,
    base_weights: Option<MappedWeights>,
    /// Victim tensor name → the base's name for it.
    base_names: BTreeMap<String, String>,
    /// Victim tensors the base lacks (kept from the victim by the base methods).
    victim_only: Vec<String>,
}

impl MergeInputs {
    /// Opens and validates the inputs: same architecture and shapes, every victim tensor in
    /// the proxy, and a base (if any) that covers the embeddings and layers.
    pub fn open(victim: &Path, proxy: &Path, base: Option<&Path>) -> Result<MergeInputs> {
        let victim = ModelFolder::open(victim)?;
        let proxy = ModelFolder::open(proxy)?;
        if let Some(problem) = victim.config.body_mismatch(&proxy.config) {
            return Err(GmsError::Mismatch {
                victim: victim.dir.clone(),
                proxy: proxy.dir.clone(),
                problem,
            });
        }
        let victim_weights = MappedWeights::open(&victim.weight_files)?;
        let proxy_weights = MappedWeights::open(&proxy.weight_files)?;
        for name in victim_weights.names() {
            let problem = match proxy_weights.shape(name) {
                None => format!("the proxy has no tensor {name}"),
                Some(s) if Some(&s) != victim_weights.shape(name).as_ref() => format!(
                    "{name} has shape {:?} vs {s:?}",
                    victim_weights.shape(name).unwrap_or_default()
                ),
                Some(_) => continue,
            };
            return Err(GmsError::Mismatch {
                victim: victim.dir.clone(),
                proxy: proxy.dir.clone(),
                problem,
            });
        }
        let mut inputs = MergeInputs {
            base_dir: None,
            base_weights: None,
            base_names: BTreeMap::new(),
            victim_only: Vec::new(),
            victim,
            proxy,
            victim_weights,
            proxy_weights,
        };
        if let Some(dir) = base {
            inputs.attach_base(dir)?;
        }
        Ok(inputs)
    }

    fn attach_base(&mut self, dir: &Path) -> Result<()> {
        if !dir.is_dir() {
            return Err(GmsError::Missing {
                path: dir.to_path_buf(),
                what: "base model folder",
                fix: "pass the pre-trained checkpoint victim and proxy were fine-tuned from (a folder with *.safetensors)",
            });
        }
        self.check_base_config(dir)?;
        let weights = MappedWeights::open(&find_weight_files(dir)?)?;
        let arch = self.victim.config.architecture;
        let root = format!("{}.", arch.body());
        let root = root.as_str();
        let body = |name: &str| {
            name.starts_with(&format!("{root}embeddings."))
                || (0..self.victim.config.layers).any(|l| name.starts_with(&arch.layer_prefix(l)))
        };
        for name in self.victim_weights.names() {
            let found = [Some(name), name.strip_prefix(root)]
                .into_iter()
                .flatten()
                .find(|n| weights.contains(n));
            match found {
                Some(b) => {
                    let (want, have) = (self.victim_weights.shape(name), weights.shape(b));
                    if want != have {
                        return Err(GmsError::bad_file(
                            dir,
                            format!(
                                "tensor {b} has shape {:?}, the victim's {name} {:?}",
                                have.unwrap_or_default(),
                                want.unwrap_or_default()
                            ),
                            "pass the checkpoint victim and proxy were fine-tuned from",
                        ));
                    }
                    self.base_names.insert(name.to_string(), b.to_string());
                }
                None if body(name) => {
                    return Err(GmsError::bad_file(
                        dir,
                        format!(
                            "the base has no tensor {name} (nor {})",
                            name.strip_prefix(root).unwrap_or(name)
                        ),
                        "pass the checkpoint victim and proxy were fine-tuned from",
                    ))
                }
                None => self.victim_only.push(name.to_string()),
            }
        }
        self.base_dir = Some(dir.to_path_buf());
        self.base_weights = Some(weights);
        Ok(())
    }

    /// A base's `config.json` need not describe a classifier (`BertModel` is fine), but where
    /// it states the body's size it must be the victim's: a base with extra layers would
    /// otherwise match every victim tensor by name.
    fn check_base_config(&self, dir: &Path) -> Result<()> {
        let path = dir.join("config.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(());
        };
        let config: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            GmsError::bad_file(
                &path,
                format!("invalid JSON ({e})"),
                "re-save the base with transformers",
            )
        })?;
        let c = &self.victim.config;
        let stated = |keys: [&str; 2]| keys.iter().find_map(|k| config[*k].as_u64());
        for (what, keys, want) in [
            ("layers", ["num_hidden_layers", "n_layers"], c.layers),
            ("hidden size", ["hidden_size", "dim"], c.hidden),
        ] {
            if let Some(have) = stated(keys) {
                if have as usize != want {
                    return Err(GmsError::bad_file(
                        &path,
                        format!("the base has {what} {have}, the victim {want}"),
                        "pass the checkpoint victim and proxy were fine-tuned from",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Victim tensors the base lacks: the base methods keep them from the victim.
    pub fn victim_only(&self) -> &[String] {
        &self.victim_only
    }

    /// Whether mergekit can read the base as it is: the victim's class in its config and
    /// every victim tensor under the victim's name. Otherwise [`Self::mergekit_base_tensors`]
    /// makes a folder it can read.
    pub fn base_is_mergekit_ready(&self) -> bool {
        let Some(dir) = &self.base_dir else {
            return true;
        };
        let same_class = crate::model::ModelConfig::from_file(&dir.join("config.json"))
            .is_ok_and(|c| c.architecture == self.victim.config.architecture);
        same_class && self.victim_only.is_empty() && self.base_names.iter().all(|(v, b)| v == b)
    }

    /// The base as mergekit needs it: every victim tensor under the victim's name, the base's
    /// values where it has them and the victim's elsewhere (a zero task vector: with the
    /// proxy's weight 0 there, mergekit keeps the victim's values, as gms does). f32.
    pub fn mergekit_base_tensors(&self) -> Result<BTreeMap<String, Tensor>> {
        let base = self
            .base_weights
            .as_ref()
            .ok_or_else(|| GmsError::BadArgument {
                flag: "--base",
                value: String::new(),
                problem: "no base was given".into(),
            })?;
        let mut out = BTreeMap::new();
        for name in self.victim_weights.names() {
            let t = match self.base_names.get(name) {
                Some(b) => base.load(b)?,
                None => self.victim_weights.load(name)?,
            };
            let t = if t.dtype().is_float() {
                t.to_dtype(DType::F32)?
            } else {
                t
            };
            out.insert(name.to_string(), t);
        }
        Ok(out)
    }
}

/// A merged model in memory: the victim's tensor names, f32 (integer buffers as stored).
pub struct MergedModel {
    /// How it was merged.
    pub params: MergeParams,
    /// The tensors, by name.
    pub tensors: BTreeMap<String, Tensor>,
    /// Tensors taken unchanged from the victim because the base lacks them.
    pub victim_kept: Vec<String>,
}

/// The generator of one DARE mask: a function of the seed, the model and the tensor name only,
/// so masks do not depend on the order tensors are merged in.
fn mask_rng(seed: u64, model: usize, name: &str) -> rand::rngs::StdRng {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update([model as u8]);
    h.update(name.as_bytes());
    rand::rngs::StdRng::from_seed(h.finalize().into())
}

/// One tensor `name` of the merge per `params`: victim's and proxy's values, and the base's
/// for the base methods (linear ignores it). DARE's masks are drawn from `params.seed` and the
/// name, so every tensor gets its own, the same on every run.
pub fn merge_values(
    name: &str,
    victim: &[f32],
    proxy: &[f32],
    base: Option<&[f32]>,
    params: &MergeParams,
) -> Vec<f32> {
    let method = params.method;
    let weights = params.weights().map(|w| w as f32);
    let Some(b) = base.filter(|_| method.needs_base()) else {
        return arithmetic::linear(victim, proxy, weights);
    };
    let (normalize, rescale) = method.mergekit_defaults();
    let how = Combine {
        consensus: method.consensus(),
        normalize,
        lambda: params.lambda as f32,
    };
    let deltas: Vec<Vec<f32>> = [victim, proxy]
        .iter()
        .enumerate()
        .map(|(i, model)| {
            let mut d = arithmetic::delta(model, b);
            let keep = match method {
                MergeMethod::Ties => arithmetic::magnitude_keep(&d, params.density),
                MergeMethod::Dare | MergeMethod::DareLinear => {
                    let mut rng = mask_rng(params.seed, i, name);
                    arithmetic::random_keep(d.len(), params.density, &mut rng)
                }
                _ => None,
            };
            if let Some(keep) = keep {
                arithmetic::sparsify(&mut d, &keep, rescale);
            }
            d
        })
        .collect();
    arithmetic::combine(b, &deltas, &weights, how)
}

/// Merges victim and proxy per `params` (the base methods also need `inputs`' base).
pub fn merge_models(inputs: &MergeInputs, params: &MergeParams) -> Result<MergedModel> {
    let method = params.method;
    let base = match (&inputs.base_weights, method.needs_base()) {
        (Some(b), true) => Some(b),
        (None, true) => {
            return Err(GmsError::BadArgument {
                flag: "--base",
                value: String::new(),
                problem: format!(
                    "{method} adds task vectors to the pre-trained model; pass the checkpoint victim and proxy were fine-tuned from with --base DIR"
                ),
            })
        }
        _ => None,
    };
    let mut tensors = BTreeMap::new();
    let mut victim_kept = Vec::new();
    for name in inputs.victim_weights.names() {
        let stored = inputs.victim_weights.load(name)?;
        let shape = stored.dims().to_vec();
        if !inputs.victim_weights.is_float(name) {
            tensors.insert(name.to_string(), stored);
            continue;
        }
        let victim = inputs.victim_weights.load_f32(name)?;
        let proxy = inputs.proxy_weights.load_f32(name)?;
        let merged = match base {
            None => merge_values(name, &victim, &proxy, None, params),
            Some(base) => match inputs.base_names.get(name) {
                None => {
                    victim_kept.push(name.to_string());
                    victim
                }
                Some(base_name) => {
                    let b = base.load_f32(base_name)?;
                    merge_values(name, &victim, &proxy, Some(&b), params)
                }
            },
        };
        tensors.insert(
            name.to_string(),
            Tensor::from_vec(merged, shape, &Device::Cpu)?,
        );
    }
    Ok(MergedModel {
        params: *params,
        tensors,
        victim_kept,
    })
}

impl MergedModel {
    /// Rounds every floating tensor to `dtype`, the dtype it will be written in, so what is
    /// scored is what is on disk.
    pub fn round_to(&mut self, dtype: DType) -> Result<()> {
        for t in self.tensors.values_mut() {
            if t.dtype().is_float() && t.dtype() != dtype {
                *t = t.to_dtype(dtype)?;
            }
        }
        Ok(())
    }

    /// The tensors as f32 on `device`, for building a classifier to score.
    pub fn f32_tensors(&self, device: &Device) -> Result<crate::model::folder::TensorMap> {
        self.tensors
            .iter()
            .map(|(name, t)| {
                let t = if t.dtype().is_float() {
                    t.to_dtype(DType::F32)?
                } else {
                    t.clone()
                };
                Ok((name.clone(), t.to_device(device)?))
            })
            .collect()
    }
}
