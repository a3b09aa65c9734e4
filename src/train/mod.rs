//! Training encoder classifiers with candle: fine-tuning from a base model folder or training
//! from scratch from a config (with a WordPiece vocabulary trained on the data).
//!
//! The training forward pass is the evaluation one (docs/algorithm.md §Evaluation conventions)
//! with LayerNorm and softmax composed from differentiable ops (docs/algorithm.md §Training: the
//! fused kernels have no backward pass) and no
//! dropout: the model being trained is exactly the model GMS later evaluates, and the demo's
//! small models are regularised by few epochs rather than by noise. Every trainable tensor is
//! checked to receive a gradient on the first step, so a silently cut graph fails loudly.

pub mod vocab;

use crate::data::dynamics::{TrainingDynamics, DYNAMICS_FILE};
use crate::data::{Dataset, Example};
use crate::error::{GmsError, Result};
use crate::model::arch::Architecture;
use crate::model::config::ModelConfig;
use crate::model::encoder::{argmax, Classifier};
use crate::model::folder::{
    copy_config_and_tokenizer, sha256_files, write_safetensors, ModelFolder, TensorMap,
};
use crate::model::random::{write_random_model, RandomModelSpec, TokenizerSource};
use crate::model::tokenize::{batch_rows, EncodedRow, TextEncoder, MAX_TOKENS};
use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// AdamW's epsilon, as in the encoder kit's training recipe (docs/kits.md §Encoder kit).
const ADAM_EPS: f64 = 1e-6;
/// No weight decay: the encoder kit's recipe and the Hugging Face Trainer's default.
const WEIGHT_DECAY: f64 = 0.0;
/// Initial weight spread of models trained from scratch (BERT's `initializer_range`).
const INIT_STD: f32 = 0.02;

/// Where training starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Fine-tune this Hugging Face model folder (its tokenizer is kept).
    Base(PathBuf),
    /// Train from scratch: this `config.json` gives the shape; weights are random (seeded) and
    /// a WordPiece vocabulary of up to its `vocab_size` is trained on the data.
    Config(PathBuf),
}

/// What `gms train` was asked to do.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Base model or config.
    pub start: Start,
    /// Training set (JSONL/TSV/CSV).
    pub data: PathBuf,
    /// Output model folder (must not exist, or be empty).
    pub out: PathBuf,
    /// Passes over the data.
    pub epochs: usize,
    /// Peak learning rate; it decays linearly to 0 over all steps.
    pub lr: f64,
    /// Rows per batch.
    pub batch: usize,
    /// Tokens per row, special tokens included (at most 128, the evaluation length).
    pub max_len: usize,
    /// Keep the embedding block (word, position, type embeddings and their LayerNorm) fixed.
    pub freeze_embeddings: bool,
    /// Seed of the shuffling (and of the initial weights when training from scratch).
    pub seed: u64,
}

/// Training progress, reported to the caller as it happens.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Data and model are ready; `steps` optimizer steps follow.
    Started {
        /// Total optimizer steps.
        steps: usize,
        /// Trainable parameters.
        trainable: usize,
    },
    /// One optimizer step done.
    Step {
        /// 1-based epoch.
        epoch: usize,
        /// This batch's loss.
        loss: f32,
        /// Learning rate used for the step.
        lr: f64,
    },
    /// An epoch finished.
    Epoch(EpochStats),
}

/// Loss and accuracy of one epoch, over its training batches.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct EpochStats {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean batch loss.
    pub loss: f64,
    /// Share of rows whose label had the highest probability in their batch's forward pass.
    pub accuracy: f64,
}

/// What a training run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainReport {
    /// The written model folder.
    pub out: PathBuf,
    /// Per-epoch statistics.
    pub epochs: Vec<EpochStats>,
    /// Trainable parameters.
    pub trainable_params: usize,
    /// Frozen parameters.
    pub frozen_params: usize,
    /// Storage dtype of the written weights.
    pub dtype: String,
}

fn bad_arg(flag: &'static str, value: impl ToString, problem: impl Into<String>) -> GmsError {
    GmsError::BadArgument {
        flag,
        value: value.to_string(),
        problem: problem.into(),
    }
}

impl TrainOptions {
    fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(bad_arg("--epochs", 0, "train for at least one epoch"));
        }
        if self.batch == 0 {
            return Err(bad_arg("--batch", 0, "a batch holds at least one row"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(bad_arg(
                "--lr",
                self.lr,
                "the learning rate must be a positive number",
            ));
        }
        if !(2..=MAX_TOKENS).contains(&self.max_len) {
            return Err(bad_arg(
                "--max-len",
                self.max_len,
                format!("use 2..={MAX_TOKENS}: evaluation truncates rows to {MAX_TOKENS} tokens (docs/algorithm.md §Evaluation conventions)"),
            ));
        }
        // The writer's own check, made before training rather than after it.
        crate::atomic::check_new_dir(&self.out)
    }
}

/// The model folder training starts from; for a config, a random model staged in a temporary
/// folder (kept alive by `_staging`).
struct StartFolder {
    folder: ModelFolder,
    out_dtype: DType,
    _staging: Option<tempfile::TempDir>,
}

fn dtype_named(name: Option<&str>) -> DType {
    match name {
        Some("float16") => DType::F16,
        Some("bfloat16") => DType::BF16,
        _ => DType::F32,
    }
}

fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F16 => "float16",
        DType::BF16 => "bfloat16",
        _ => "float32",
    }
}

fn open_start(opts: &TrainOptions, data: &Dataset) -> Result<StartFolder> {
    match &opts.start {
        Start::Base(dir) => {
            let folder = ModelFolder::open(dir)?;
            let out_dtype = folder.stored_dtype()?;
            Ok(StartFolder {
                folder,
                out_dtype,
                _staging: None,
            })
        }
        Start::Config(file) => {
            let bad = |problem: String| {
                GmsError::bad_file(
                    file,
                    problem,
                    "give a BERT or DistilBERT config.json (see assets/demo/config.json)",
                )
            };
            let text = std::fs::read_to_string(file).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => GmsError::Missing {
                    path: file.clone(),
                    what: "model config",
                    fix: "pass a config.json, e.g. assets/demo/config.json",
                },
                _ => bad(e.to_string()),
            })?;
            let mut json: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| bad(format!("invalid JSON ({e})")))?;
            let config = ModelConfig::from_json(&json).map_err(bad)?;
            if config.architecture == Architecture::Roberta {
                return Err(bad(
                    "RoBERTa needs a byte-level BPE vocabulary, which gms does not train".into(),
                ));
            }
            let words = vocab::train_wordpiece(&data.examples, config.vocab_size)?;
            let vocab_size = words.len() + crate::model::random::SPECIAL_TOKENS.len();
            let staging = tempfile::Builder::new()
                .prefix("gms-train-")
                .tempdir()
                .map_err(|e| GmsError::output(std::env::temp_dir(), e))?;
            let spec = RandomModelSpec {
                architecture: config.architecture,
                hidden: config.hidden,
                layers: config.layers,
                heads: config.heads,
                intermediate: config.intermediate,
                num_labels: config.num_labels,
                max_positions: config.max_positions,
                vocab_size,
                tokenizer: TokenizerSource::Words(words),
                seed: opts.seed,
                std: INIT_STD,
            };
            write_random_model(staging.path(), &spec)?;
            // The user's config (activation, eps, labels, dtype…) with the trained vocabulary's size.
            json["vocab_size"] = vocab_size.into();
            json["pad_token_id"] = 0.into();
            let config_path = staging.path().join("config.json");
            let pretty = serde_json::to_string_pretty(&json)
                .map_err(|e| GmsError::output(&config_path, e))?;
            crate::atomic::write_file(&config_path, pretty.as_bytes())?;
            let folder = ModelFolder::open(staging.path())?;
            Ok(StartFolder {
                out_dtype: dtype_named(config.dtype.as_deref()),
                folder,
                _staging: Some(staging),
            })
        }
    }
}

/// Tokenizes `examples` with the model's tokenizer and cuts rows to `max_len` tokens, keeping
/// the closing special token (`[SEP]`/`</s>`).
fn encode_rows(
    encoder: &TextEncoder,
    examples: &[Example],
    max_len: usize,
) -> Result<Vec<EncodedRow>> {
    let mut rows = encoder.encode(examples)?;
    for r in &mut rows {
        if r.ids.len() > max_len {
            let (last, last_type) = (r.ids[r.ids.len() - 1], r.type_ids[r.type_ids.len() - 1]);
            r.ids.truncate(max_len - 1);
            r.type_ids.truncate(max_len - 1);
            r.ids.push(last);
            r.type_ids.push(last_type);
        }
    }
    Ok(rows)
}

/// Trains as `opts` says, writes the model folder atomically and returns what happened.
/// `progress` hears about every step (for a progress bar).
pub fn train(
    opts: &TrainOptions,
    device: &Device,
    progress: &mut dyn FnMut(&Progress),
) -> Result<TrainReport> {
    opts.validate()?;
    let data = Dataset::read(&opts.data)?;
    let start = open_start(opts, &data)?;
    let config = &start.folder.config;
    data.check_labels(config.num_labels)?;
    if config.max_positions < opts.max_len {
        return Err(bad_arg(
            "--max-len",
            opts.max_len,
            format!(
                "the model has only {} position embeddings",
                config.max_positions
            ),
        ));
    }
    let encoder = TextEncoder::load(&start.folder.dir, config)?;
    let rows = encode_rows(&encoder, &data.examples, opts.max_len)?;
    let mut run = Run::new(opts, &start, rows, device)?;
    progress(&Progress::Started {
        steps: run.total_steps,
        trainable: run.trainable,
    });
    let n = run.rows.len();
    let data_sha = sha256_files(std::slice::from_ref(&opts.data))?;
    let mut dynamics = TrainingDynamics::new(&opts.data, data_sha, n, opts.epochs);
    // Salted like the other seeded steps (see `data::poison`), so batches do not follow the
    // poisoner's draws.
    let mut rng = StdRng::seed_from_u64(opts.seed ^ u64::from_le_bytes(*b"gms-batc"));
    let mut order: Vec<usize> = (0..n).collect();
    let mut stats = Vec::with_capacity(opts.epochs);
    for epoch in 1..=opts.epochs {
        let batches = length_grouped_batches(&mut order, &run.rows, opts.batch, &mut rng);
        let (s, p_label) = run.epoch(epoch, &batches, progress)?;
        for (row, p) in dynamics.p_label.iter_mut().zip(p_label) {
            row.push(p);
        }
        progress(&Progress::Epoch(s));
        stats.push(s);
    }

    write_model(&start, &run.model, &dynamics, &opts.out)?;
    Ok(TrainReport {
        out: opts.out.clone(),
        epochs: stats,
        trainable_params: run.trainable,
        frozen_params: run.frozen,
        dtype: dtype_name(start.out_dtype).to_string(),
    })
}

/// A training run in progress: the model over its trainable parameters, the optimizer and
/// the learning-rate schedule.
struct Run<'a> {
    opts: &'a TrainOptions,
    device: &'a Device,
    /// The tokenized training set.
    rows: Vec<EncodedRow>,
    /// The classifier, built over the [`Var`]s' tensors.
    model: Classifier,
    /// Trainable parameters by checkpoint name (what the optimizer updates).
    vars: Vec<(String, Var)>,
    optimizer: AdamW,
    trainable: usize,
    frozen: usize,
    /// Optimizer steps taken.
    step: usize,
    total_steps: usize,
}

/// One optimizer step's view of its batch.
struct StepOutcome {
    /// The batch's loss (before the step).
    loss: f32,
    /// The learning rate the step used.
    lr: f64,
    /// For each row of the batch (as an index into the training set): the probability of its
    /// label, and whether the label was the prediction.
    rows: Vec<(usize, f32, bool)>,
}

impl<'a> Run<'a> {
    /// Loads the start model; trainable tensors become [`Var`]s, updated in place by the
    /// optimizer, so the classifier built over their tensors always sees the current weights.
    fn new(
        opts: &'a TrainOptions,
        start: &StartFolder,
        rows: Vec<EncodedRow>,
        device: &'a Device,
    ) -> Result<Run<'a>> {
        let config = &start.folder.config;
        let tensors = start.folder.load_tensors(device)?;
        let base = Classifier::from_tensors(config, &tensors, &start.folder.dir)?;
        let mut vars: Vec<(String, Var)> = Vec::new();
        let mut map = TensorMap::new();
        let (mut trainable, mut frozen) = (0, 0);
        let embeddings = config.architecture.embedding_names();
        for (name, t) in base.named_tensors() {
            if opts.freeze_embeddings && embeddings.contains(&name) {
                frozen += t.elem_count();
                map.insert(name, t);
            } else {
                trainable += t.elem_count();
                let var = Var::from_tensor(&t)?;
                map.insert(name.clone(), var.as_tensor().clone());
                vars.push((name, var));
            }
        }
        let mut model = Classifier::from_tensors(config, &map, &start.folder.dir)?;
        model.trainable = true;
        let optimizer = AdamW::new(
            vars.iter().map(|(_, v)| v.clone()).collect(),
            ParamsAdamW {
                lr: opts.lr,
                beta1: 0.9,
                beta2: 0.999,
                eps: ADAM_EPS,
                weight_decay: WEIGHT_DECAY,
            },
        )?;
        let total_steps = rows.len().div_ceil(opts.batch) * opts.epochs;
        Ok(Run {
            opts,
            device,
            rows,
            model,
            vars,
            optimizer,
            trainable,
            frozen,
            step: 0,
            total_steps,
        })
    }

    /// One pass over `batches`: its statistics and each row's probability of its label.
    fn epoch(
        &mut self,
        epoch: usize,
        batches: &[Vec<usize>],
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<(EpochStats, Vec<f32>)> {
        let n = self.rows.len();
        let mut p_label = vec![0f32; n];
        let (mut loss_sum, mut correct) = (0f64, 0usize);
        for chunk in batches {
            let outcome = self.step(chunk)?;
            loss_sum += outcome.loss as f64;
            for (row, p, predicted) in outcome.rows {
                p_label[row] = p;
                correct += predicted as usize;
            }
            progress(&Progress::Step {
                epoch,
                loss: outcome.loss,
                lr: outcome.lr,
            });
        }
        let stats = EpochStats {
            epoch,
            loss: loss_sum / batches.len() as f64,
            accuracy: correct as f64 / n as f64,
        };
        Ok((stats, p_label))
    }

    /// One optimizer step on the training rows `chunk`.
    fn step(&mut self, chunk: &[usize]) -> Result<StepOutcome> {
        let config = &self.model.config;
        let subset: Vec<EncodedRow> = chunk.iter().map(|&i| self.rows[i].clone()).collect();
        let set = batch_rows(
            &subset,
            config.architecture,
            config.pad_token_id,
            self.device,
            usize::MAX,
        )?;
        let batch = &set.batches[0];
        let labels = Tensor::new(batch.labels.as_slice(), self.device)?;
        let logits = self.model.logits(&batch.input)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &labels)?;
        let grads = loss.backward()?;
        if self.step == 0 {
            check_gradients(&self.vars, &grads)?;
        }
        // Linear decay from the peak to 0 over all steps (no warm-up).
        let lr = self.opts.lr * (1.0 - self.step as f64 / self.total_steps as f64);
        self.optimizer.set_learning_rate(lr);
        self.optimizer.step(&grads)?;
        self.step += 1;

        let loss = loss.to_scalar::<f32>()?;
        if !loss.is_finite() {
            return Err(GmsError::BadArgument {
                flag: "--lr",
                value: self.opts.lr.to_string(),
                problem: format!(
                    "the loss became {loss} at step {}; lower the learning rate",
                    self.step
                ),
            });
        }
        let probs = candle_nn::ops::softmax(&logits.detach(), D::Minus1)?.to_vec2::<f32>()?;
        let rows = batch
            .rows
            .iter()
            .zip(&batch.labels)
            .zip(&probs)
            .map(|((&r, &label), p)| (chunk[r], p[label as usize], argmax(p) == label as usize))
            .collect();
        Ok(StepOutcome { loss, lr, rows })
    }
}

/// Rows per pool within which batches are formed from rows of similar length, in batches.
const LENGTH_POOL_BATCHES: usize = 32;

/// Shuffles `order`, then cuts it into batches of rows of similar length (sorted within pools
/// of [`LENGTH_POOL_BATCHES`] batches) in random order: padding, which costs as much compute
/// as real tokens, drops by about half while batches stay random. Always `ceil(n / batch)`
/// batches.
fn length_grouped_batches(
    order: &mut [usize],
    rows: &[EncodedRow],
    batch: usize,
    rng: &mut StdRng,
) -> Vec<Vec<usize>> {
    order.shuffle(rng);
    let mut batches = Vec::with_capacity(order.len().div_ceil(batch));
    for pool in order.chunks(batch * LENGTH_POOL_BATCHES) {
        let mut pool = pool.to_vec();
        pool.sort_by_key(|&i| rows[i].ids.len());
        batches.extend(pool.chunks(batch).map(<[usize]>::to_vec));
    }
    batches.shuffle(rng);
    batches
}

/// Fails unless every trainable tensor got a gradient with a non-zero entry: a fused op
/// without backward pass (docs/algorithm.md §Training) would silently leave tensors untrained.
fn check_gradients(vars: &[(String, Var)], grads: &candle_core::backprop::GradStore) -> Result<()> {
    for (name, var) in vars {
        let moved = match grads.get(var.as_tensor()) {
            Some(g) => g.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0,
            None => false,
        };
        if !moved {
            return Err(GmsError::Compute(candle_core::Error::Msg(format!(
                "parameter {name} receives no gradient; the training forward pass is cut (a fused op without backward?)"
            ))));
        }
    }
    Ok(())
}

/// Writes config, tokenizer files, weights (in the start model's dtype) and the dynamics
/// record into `out`, atomically.
fn write_model(
    start: &StartFolder,
    model: &Classifier,
    dynamics: &TrainingDynamics,
    out: &Path,
) -> Result<()> {
    let mut tensors: BTreeMap<String, Tensor> = BTreeMap::new();
    for (name, t) in model.named_tensors() {
        tensors.insert(
            name,
            t.detach()
                .to_dtype(start.out_dtype)?
                .to_device(&Device::Cpu)?,
        );
    }
    crate::atomic::write_dir(out, |tmp| {
        // Not the start model's own training record or metrics: this model writes its own.
        copy_config_and_tokenizer(&start.folder.dir, tmp)?;
        write_safetensors(&tmp.join("model.safetensors"), &tensors)?;
        dynamics.write(&tmp.join(DYNAMICS_FILE))
    })
}
