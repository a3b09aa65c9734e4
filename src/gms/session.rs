//! Everything a search needs, loaded and checked: victim, proxy, proxy sets, optional test sets.
//! Victim and proxy are two encoders, two PEFT LoRA adapters over one base (loaded once and
//! shared), or two fine-tuned decoders.

use crate::data::Dataset;
use crate::error::{GmsError, Result};
use crate::gms::evaluator::Evaluator;
use crate::model::encoder::{argmax_rows, Classifier};
use crate::model::tokenize::EncodedSet;
use crate::model::{LoadedPair, ModelSource, SubstitutionMatrix};
use candle_core::{DType, Device};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;

/// Paths of a search's inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchInputs {
    /// The suspect (backdoored) model folder, or its PEFT adapter folder.
    pub victim: PathBuf,
    /// The proxy (donor) model folder, or its PEFT adapter folder.
    pub proxy: PathBuf,
    /// The adapters' base model folder; `None`: the victim adapter's
    /// `base_model_name_or_path` (and always for encoders and fine-tuned decoders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<PathBuf>,
    /// Clean proxy set D_c.
    pub clean: PathBuf,
    /// Suspect proxy set D_p (rows carry the attacker's target label).
    pub suspect: PathBuf,
    /// Clean test set (CACC).
    pub test_clean: Option<PathBuf>,
    /// Poisoned test set (ASR: non-target rows with the trigger, relabelled to the target).
    pub test_poison: Option<PathBuf>,
}

/// Clean accuracy and attack success rate on the test sets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TestMetrics {
    /// Accuracy on the clean test set.
    pub cacc: f64,
    /// Share of the poisoned test set predicted as the target.
    pub asr: f64,
    /// Clean test rows predicted correctly.
    pub clean_correct: usize,
    /// Clean test rows.
    pub clean_total: usize,
    /// Poisoned test rows predicted as the target.
    pub poison_hits: usize,
    /// Poisoned test rows.
    pub poison_total: usize,
}

/// How far reduced-precision evaluation moves the victim's predictions on the proxy sets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrecisionReport {
    /// The evaluation dtype (`bf16` or `f16`).
    pub dtype: String,
    /// Proxy-set rows whose victim prediction differs from the f32 one.
    pub differ: usize,
    /// Proxy-set rows (clean + suspect).
    pub total: usize,
}

impl std::fmt::Display for PrecisionReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} of {} proxy-set predictions differ from f32",
            self.dtype, self.differ, self.total
        )
    }
}

/// Encoded test sets.
pub struct TestSets {
    clean: EncodedSet,
    poison: EncodedSet,
}

/// Loaded inputs and the evaluator over them.
pub struct Session {
    /// Where everything came from.
    pub inputs: SearchInputs,
    /// The proxy-set evaluator (owns both models).
    pub evaluator: Evaluator,
    /// Where the victim came from (what exports rebuild the purified model from).
    pub victim: ModelSource,
    /// Where the proxy came from.
    pub proxy: ModelSource,
    /// What the user should know about the pair before trusting a result (adapters that
    /// adapt different modules or ranks); front ends show them.
    pub warnings: Vec<String>,
    /// Human-readable compute device, with the evaluation dtype and, below f32, how many
    /// proxy-set predictions it changes (the search's status line and baseline event show it).
    pub device_name: String,
    /// The dtype models and activations are evaluated in.
    pub dtype: DType,
    /// Below f32: the victim's proxy-set predictions compared with f32 ones.
    pub precision: Option<PrecisionReport>,
    test_sets: Option<TestSets>,
    test_cache: HashMap<SubstitutionMatrix, TestMetrics>,
}

/// Reads a dataset and checks its labels against the model.
pub fn read_dataset(path: &std::path::Path, num_labels: usize) -> Result<Dataset> {
    let d = Dataset::read(path)?;
    d.check_labels(num_labels)?;
    Ok(d)
}

impl Session {
    /// Loads models and datasets; everything is validated before any search work starts.
    pub fn load(inputs: SearchInputs, device: &Device) -> Result<Session> {
        Session::load_with(inputs, device, DType::F32)
    }

    /// [`Self::load`], evaluating in `dtype` (f32, bf16 or f16). Below f32 the victim also
    /// runs once in f32 so [`Self::precision`] can say how many predictions the dtype changes.
    pub fn load_with(inputs: SearchInputs, device: &Device, dtype: DType) -> Result<Session> {
        check_request(&inputs, dtype)?;
        let (pair, warnings) = LoadedPair::load(
            &inputs.victim,
            &inputs.proxy,
            inputs.base.as_deref(),
            device,
        )?;
        for w in &warnings {
            tracing::warn!("{w}");
        }
        let (victim_source, proxy_source) = pair.sources();
        let (evaluator, test_sets, precision) = match pair {
            LoadedPair::Encoder { victim, proxy } => {
                let encoder = victim.text_encoder()?;
                let labels = victim.folder.config.num_labels;
                let encode = |p: &std::path::Path| -> Result<EncodedSet> {
                    encoder.encode_set(&read_dataset(p, labels)?.examples, device)
                };
                let mut work = Workload {
                    victim: victim.classifier,
                    proxy: proxy.classifier,
                    clean: encode(&inputs.clean)?,
                    suspect: encode(&inputs.suspect)?,
                    test_sets: test_sets(&inputs, encode)?,
                };
                let precision = if dtype == DType::F32 {
                    None
                } else {
                    let (lowered, report) = work.lowered(dtype)?;
                    tracing::info!(%report, "reduced-precision evaluation");
                    work = lowered;
                    Some(report)
                };
                let evaluator = Evaluator::new(work.victim, work.proxy, work.clean, work.suspect)?;
                (evaluator, work.test_sets, precision)
            }
            LoadedPair::Decoder { victim, proxy } => {
                if dtype != DType::F32 {
                    return Err(GmsError::BadArgument {
                        flag: "--dtype",
                        value: dtype.as_str().to_string(),
                        problem: "decoders evaluate in f32 (their bf16 bases are converted per use); drop --dtype".into(),
                    });
                }
                let encoder = victim.text_encoder()?;
                let labels = victim.classifier.num_labels();
                let encode = |p: &std::path::Path| -> Result<EncodedSet> {
                    encoder.encode_set(&read_dataset(p, labels)?.examples, device)
                };
                let (clean, suspect) = (encode(&inputs.clean)?, encode(&inputs.suspect)?);
                let tests = test_sets(&inputs, encode)?;
                let evaluator =
                    Evaluator::new(victim.classifier, proxy.classifier, clean, suspect)?;
                (evaluator, tests, None)
            }
        };
        let device_name = match &precision {
            Some(p) => format!("{}, {p}", device_name(device)),
            None => device_name(device),
        };
        Ok(Session {
            inputs,
            evaluator,
            victim: victim_source,
            proxy: proxy_source,
            warnings,
            device_name,
            dtype,
            precision,
            test_sets,
            test_cache: HashMap::new(),
        })
    }

    /// [`Self::load_with`], the score measuring drops as `drops` (what `--drops` chooses).
    pub fn load_scoring(
        inputs: SearchInputs,
        device: &Device,
        dtype: DType,
        drops: crate::gms::score::Drops,
    ) -> Result<Session> {
        let mut session = Session::load_with(inputs, device, dtype)?;
        session.evaluator.drops = drops;
        Ok(session)
    }

    /// `examples` encoded for `model` (the session's victim or proxy) with that model's own
    /// tokenizer, on the evaluator's device, in the session's dtype.
    pub fn encode_for(
        &self,
        model: &ModelSource,
        examples: &[crate::data::Example],
    ) -> Result<EncodedSet> {
        let device = self.evaluator.device();
        let set = match model {
            ModelSource::Encoder(folder) => {
                crate::model::tokenize::TextEncoder::load(&folder.dir, &folder.config)?
                    .encode_set(examples, device)?
            }
            ModelSource::Decoder { base, adapter } => {
                // The adapter's own tokenizer when it saved one, else the base's.
                let dir = adapter
                    .as_deref()
                    .filter(|a| a.join("tokenizer.json").is_file())
                    .unwrap_or(&base.dir);
                crate::model::decoder_tokenize::DecoderTextEncoder::load(dir, &base.config)?
                    .encode_set(examples, device)?
            }
        };
        if self.dtype == DType::F32 {
            Ok(set)
        } else {
            set.to_dtype(self.dtype)
        }
    }

    /// Whether test sets were given.
    pub fn has_test_sets(&self) -> bool {
        self.test_sets.is_some()
    }

    /// Test-set CACC and ASR of the `matrix` model (cached), or `None` without test sets.
    pub fn test_metrics(&mut self, matrix: &SubstitutionMatrix) -> Result<Option<TestMetrics>> {
        let Some(sets) = &self.test_sets else {
            return Ok(None);
        };
        if let Some(m) = self.test_cache.get(matrix) {
            return Ok(Some(*m));
        }
        let clean_correct = self.evaluator.count_correct(matrix, &sets.clean)?;
        let poison_hits = self.evaluator.count_correct(matrix, &sets.poison)?;
        let m = TestMetrics {
            cacc: clean_correct as f64 / sets.clean.len as f64,
            asr: poison_hits as f64 / sets.poison.len as f64,
            clean_correct,
            clean_total: sets.clean.len,
            poison_hits,
            poison_total: sets.poison.len,
        };
        self.test_cache.insert(matrix.clone(), m);
        Ok(Some(m))
    }
}

/// The encoded test sets, when both are given.
fn test_sets(
    inputs: &SearchInputs,
    encode: impl Fn(&std::path::Path) -> Result<EncodedSet>,
) -> Result<Option<TestSets>> {
    Ok(match (&inputs.test_clean, &inputs.test_poison) {
        (Some(c), Some(p)) => Some(TestSets {
            clean: encode(c)?,
            poison: encode(p)?,
        }),
        _ => None,
    })
}

/// Refuses what no loading can fix: an evaluation dtype other than f32/bf16/f16, or one
/// test set without the other.
fn check_request(inputs: &SearchInputs, dtype: DType) -> Result<()> {
    if !matches!(dtype, DType::F32 | DType::BF16 | DType::F16) {
        return Err(GmsError::BadArgument {
            flag: "--dtype",
            value: dtype.as_str().to_string(),
            problem: "evaluation runs in f32, bf16 or f16".into(),
        });
    }
    if inputs.test_clean.is_some() != inputs.test_poison.is_some() {
        return Err(GmsError::BadArgument {
            flag: "--test-clean/--test-poison",
            value: String::new(),
            problem: "give both test sets or neither".into(),
        });
    }
    Ok(())
}

/// The models and encoded sets a session evaluates, all in one dtype.
struct Workload {
    victim: Classifier,
    proxy: Classifier,
    clean: EncodedSet,
    suspect: EncodedSet,
    test_sets: Option<TestSets>,
}

impl Workload {
    /// The same in `dtype` (bf16 or f16), and how many of the victim's proxy-set predictions
    /// that changes.
    fn lowered(self, dtype: DType) -> Result<(Workload, PrecisionReport)> {
        let before = [
            predictions(&self.victim, &self.clean)?,
            predictions(&self.victim, &self.suspect)?,
        ];
        let lowered = Workload {
            victim: self.victim.to_dtype(dtype)?,
            proxy: self.proxy.to_dtype(dtype)?,
            clean: self.clean.to_dtype(dtype)?,
            suspect: self.suspect.to_dtype(dtype)?,
            test_sets: match self.test_sets {
                Some(t) => Some(TestSets {
                    clean: t.clean.to_dtype(dtype)?,
                    poison: t.poison.to_dtype(dtype)?,
                }),
                None => None,
            },
        };
        let after = [
            predictions(&lowered.victim, &lowered.clean)?,
            predictions(&lowered.victim, &lowered.suspect)?,
        ];
        let differ = before
            .iter()
            .flatten()
            .zip(after.iter().flatten())
            .filter(|(a, b)| a != b)
            .count();
        let report = PrecisionReport {
            dtype: dtype.as_str().to_string(),
            differ,
            total: lowered.clean.len + lowered.suspect.len,
        };
        Ok((lowered, report))
    }
}

/// Names a device for status lines and reports (see [`crate::device::describe`]).
pub fn device_name(device: &Device) -> String {
    crate::device::describe(device)
}

/// The model's prediction for every row of `set`, in batch order.
fn predictions(model: &Classifier, set: &EncodedSet) -> Result<Vec<u32>> {
    let mut out = Vec::with_capacity(set.len);
    for logits in model.set_logits(set)? {
        out.extend(argmax_rows(&logits)?);
    }
    Ok(out)
}
