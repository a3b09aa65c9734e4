//! Merge baselines: the victim merged with the proxy by WAG (linear), task arithmetic, TIES or
//! DARE, to compare with GMS on the same proxy and test sets (docs/merging.md).
//!
//! - [`arithmetic`]: the per-tensor maths, following mergekit 0.1.5 operation for operation;
//! - [`models`]: memory-mapped inputs, tensor-name matching and the whole-model merge;
//! - [`score`]: the merged model on the proxy sets (acc, asr, score under α) and test sets.
//!
//! Which tensors are merged: every tensor for `linear` (the paper's WAG averages the whole
//! state dict, head included). The base methods merge every tensor the pre-trained base has;
//! the ones it lacks — the classification head of a plain encoder checkpoint — stay the
//! victim's, as the paper's DARE baseline keeps them (it excludes `.*classifier.*`).

pub mod arithmetic;
pub mod models;
pub mod score;

use crate::error::{GmsError, Result};
use crate::model::decoder::DecoderClassifier;
use serde::{Deserialize, Serialize};
use std::fmt;

pub mod decoder;

pub use models::{merge_models, MergeInputs, MergedModel};
pub use score::{score_model, ModelScore, Scoring, ScoringSets};

/// The merge methods gms computes, each as mergekit defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MergeMethod {
    /// Weighted mean of victim and proxy (WAG); needs no base. mergekit `linear`.
    Linear,
    /// `base + λ·Σ wᵢ·(modelᵢ − base)`. mergekit `task_arithmetic`.
    TaskArithmetic,
    /// Magnitude trim, sign election, disjoint mean. mergekit `ties`.
    Ties,
    /// Random drop with L1 rescale, then TIES sign election. mergekit `dare_ties`.
    Dare,
    /// Random drop with L1 rescale, then task arithmetic. mergekit `dare_linear`.
    DareLinear,
}

impl MergeMethod {
    /// Every method, in the order tables list them.
    pub const ALL: [MergeMethod; 5] = [
        MergeMethod::Linear,
        MergeMethod::TaskArithmetic,
        MergeMethod::Ties,
        MergeMethod::Dare,
        MergeMethod::DareLinear,
    ];

    /// The name `gms merge --method` takes.
    pub fn name(self) -> &'static str {
        match self {
            MergeMethod::Linear => "linear",
            MergeMethod::TaskArithmetic => "task-arithmetic",
            MergeMethod::Ties => "ties",
            MergeMethod::Dare => "dare",
            MergeMethod::DareLinear => "dare-linear",
        }
    }

    /// mergekit's `merge_method` for it.
    pub fn mergekit_name(self) -> &'static str {
        match self {
            MergeMethod::Linear => "linear",
            MergeMethod::TaskArithmetic => "task_arithmetic",
            MergeMethod::Ties => "ties",
            MergeMethod::Dare => "dare_ties",
            MergeMethod::DareLinear => "dare_linear",
        }
    }

    /// Whether the method works on task vectors and so needs the pre-trained base.
    pub fn needs_base(self) -> bool {
        self != MergeMethod::Linear
    }

    /// Whether the method trims task vectors (takes a density).
    pub fn sparsifies(self) -> bool {
        matches!(
            self,
            MergeMethod::Ties | MergeMethod::Dare | MergeMethod::DareLinear
        )
    }

    /// Whether the trim is random (takes a seed).
    pub fn is_random(self) -> bool {
        matches!(self, MergeMethod::Dare | MergeMethod::DareLinear)
    }

    /// mergekit's defaults for the method: (`normalize`, `rescale`), from
    /// `merge_methods/registry.py`.
    pub fn mergekit_defaults(self) -> (bool, bool) {
        match self {
            MergeMethod::Linear => (true, false),
            MergeMethod::TaskArithmetic => (false, false),
            MergeMethod::Ties => (true, false),
            MergeMethod::Dare | MergeMethod::DareLinear => (false, true),
        }
    }

    /// Whether the method elects signs (TIES consensus).
    pub fn consensus(self) -> bool {
        matches!(self, MergeMethod::Ties | MergeMethod::Dare)
    }

    /// Parses a `--method` name.
    pub fn from_name(name: &str) -> Option<MergeMethod> {
        MergeMethod::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl fmt::Display for MergeMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The proxy's weight by default: victim and proxy count equally, the paper's WAG (a plain
/// mean; the reference's WAG script averages the two state dicts).
pub const DEFAULT_WEIGHT: f64 = 0.5;
/// Share of each task vector TIES and DARE keep by default: the paper's TIES baseline keeps
/// the top 70 % (its `--k 70`); DARE gets the same share so the two differ only in how they
/// choose (magnitude vs chance). The paper grid-searched DARE's drop rate over 0.1–0.9.
pub const DEFAULT_DENSITY: f64 = 0.7;
/// Scale of the merged task vector: mergekit's default `lambda`.
pub const DEFAULT_LAMBDA: f64 = 1.0;
/// Seed of DARE's random masks: the reference implementation's default seed.
pub const DEFAULT_SEED: u64 = 42;

/// A merge method and its parameters, validated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MergeParams {
    /// The method.
    pub method: MergeMethod,
    /// The proxy's weight; the victim's is `1 − weight`.
    pub weight: f64,
    /// Share of each task vector kept (TIES, DARE); 1 for the other methods.
    pub density: f64,
    /// Scale of the merged task vector (base methods); 1 for `linear`.
    pub lambda: f64,
    /// Seed of DARE's masks (only random methods use it).
    pub seed: u64,
}

impl MergeParams {
    /// The method with the defaults above.
    pub fn defaults(method: MergeMethod) -> MergeParams {
        MergeParams {
            method,
            weight: DEFAULT_WEIGHT,
            density: if method.sparsifies() {
                DEFAULT_DENSITY
            } else {
                1.0
            },
            lambda: DEFAULT_LAMBDA,
            seed: DEFAULT_SEED,
        }
    }

    /// The defaults overridden by the options given; options the method does not use are
    /// refused rather than ignored.
    pub fn validated(
        method: MergeMethod,
        weight: Option<f64>,
        density: Option<f64>,
        lambda: Option<f64>,
        seed: Option<u64>,
    ) -> Result<MergeParams> {
        let refuse = |flag: &'static str, value: String, problem: String| GmsError::BadArgument {
            flag,
            value,
            problem,
        };
        let mut p = MergeParams::defaults(method);
        if let Some(w) = weight {
            if !(0.0..=1.0).contains(&w) {
                return Err(refuse(
                    "--weight",
                    w.to_string(),
                    "the proxy's weight must lie in [0, 1] (the victim gets 1 − weight; 0.5 is the paper's WAG)".into(),
                ));
            }
            p.weight = w;
        }
        if let Some(d) = density {
            if !method.sparsifies() {
                return Err(refuse(
                    "--density",
                    d.to_string(),
                    format!("{method} keeps every entry; --density applies to ties, dare and dare-linear"),
                ));
            }
            if !(d > 0.0 && d <= 1.0) {
                return Err(refuse(
                    "--density",
                    d.to_string(),
                    "the share of each task vector kept must lie in (0, 1]".into(),
                ));
            }
            p.density = d;
        }
        if let Some(l) = lambda {
            if !method.needs_base() {
                return Err(refuse(
                    "--lambda",
                    l.to_string(),
                    "linear has no task vector to scale; --lambda applies to the base methods"
                        .into(),
                ));
            }
            if !l.is_finite() {
                return Err(refuse(
                    "--lambda",
                    l.to_string(),
                    "must be a finite number".into(),
                ));
            }
            p.lambda = l;
        }
        if let Some(s) = seed {
            if !method.is_random() {
                return Err(refuse(
                    "--seed",
                    s.to_string(),
                    format!("{method} is deterministic; --seed applies to dare and dare-linear"),
                ));
            }
            p.seed = s;
        }
        Ok(p)
    }

    /// The victim's and the proxy's weights, in that order.
    pub fn weights(&self) -> [f64; 2] {
        [1.0 - self.weight, self.weight]
    }

    /// One line for tables and logs, e.g. `ties (weight 0.5, density 0.7)`.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.method, self.settings())
    }

    /// The parameters the method uses, e.g. `weight 0.5, density 0.7`.
    pub fn settings(&self) -> String {
        let mut parts = vec![format!("weight {}", self.weight)];
        if self.method.sparsifies() {
            parts.push(format!("density {}", self.density));
        }
        if self.method.needs_base() && self.lambda != 1.0 {
            parts.push(format!("λ {}", self.lambda));
        }
        if self.method.is_random() {
            parts.push(format!("seed {}", self.seed));
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_a_method_does_not_use_are_refused() {
        assert!(MergeParams::validated(MergeMethod::Linear, None, Some(0.5), None, None).is_err());
        assert!(MergeParams::validated(MergeMethod::Ties, None, None, None, Some(1)).is_err());
        assert!(MergeParams::validated(MergeMethod::Ties, None, Some(0.0), None, None).is_err());
        assert!(MergeParams::validated(MergeMethod::Linear, Some(1.5), None, None, None).is_err());
        let p =
            MergeParams::validated(MergeMethod::Dare, Some(0.3), Some(0.2), None, Some(7)).unwrap();
        assert_eq!((p.weights(), p.density, p.seed), ([0.7, 0.3], 0.2, 7));
        assert_eq!(MergeParams::defaults(MergeMethod::Linear).density, 1.0);
        for m in MergeMethod::ALL {
            assert_eq!(MergeMethod::from_name(m.name()), Some(m));
        }
    }
}

/// One merge baseline at its defaults, scored like a strategy.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineScore {
    /// The method.
    pub method: MergeMethod,
    /// Its parameters, in words (`gms baselines`' parameters column).
    pub settings: String,
    /// Its counts on the proxy sets and scores on the test sets.
    pub score: ModelScore,
}

/// Where `gms merge --mergekit FILE` puts the base folder mergekit reads when the given base
/// is not in the victim's layout: beside FILE, named `<FILE stem>-mergekit-base`.
pub fn mergekit_base_dir(yaml: &std::path::Path) -> std::path::PathBuf {
    let stem = yaml
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "merge".into());
    yaml.with_file_name(format!("{stem}-mergekit-base"))
}

/// Why a method of [`baseline_methods`] did not run: the base methods need the pre-trained
/// base.
pub const NEEDS_BASE: &str = "needs the pre-trained base (--base DIR)";

/// Merges and scores `method` at its defaults (`gms baselines`' rows; the TUI's baselines).
pub fn merge_baseline(
    inputs: &MergeInputs,
    method: MergeMethod,
    sets: &ScoringSets,
    device: &candle_core::Device,
) -> Result<BaselineScore> {
    let mut run = BaselineRun::merge_encoder(inputs, method, device)?;
    loop {
        if let Some(done) = run.advance(sets)? {
            return Ok(done);
        }
    }
}

/// What merge baselines are made from: an encoder pair's checkpoints (and base), or two
/// decoder adapters over one base, loaded ([`decoder`]).
pub enum BaselinePair {
    /// Encoder checkpoints, memory-mapped.
    Encoder(Box<MergeInputs>),
    /// Victim and proxy adapters over their shared base.
    Decoder(Box<(DecoderClassifier, DecoderClassifier)>),
}

impl BaselinePair {
    /// The methods this pair can run, and the others with why not.
    pub fn methods(&self) -> (Vec<MergeMethod>, Vec<(MergeMethod, String)>) {
        match self {
            BaselinePair::Encoder(inputs) => baseline_methods(inputs),
            // All five: the base the base methods need is the adapters' own.
            BaselinePair::Decoder(_) => (MergeMethod::ALL.to_vec(), Vec::new()),
        }
    }
}

/// A merged model being scored.
enum Merged {
    Encoder(crate::model::encoder::Classifier),
    Decoder(DecoderClassifier),
}

/// [`merge_baseline`] in units: the merge, then each part of the scoring ([`Scoring`]).
pub struct BaselineRun {
    method: MergeMethod,
    settings: String,
    model: Merged,
    scoring: Scoring,
}

impl BaselineRun {
    /// Merges `method` at its defaults: the first unit.
    pub fn merge(
        pair: &BaselinePair,
        method: MergeMethod,
        device: &candle_core::Device,
    ) -> Result<BaselineRun> {
        match pair {
            BaselinePair::Encoder(inputs) => BaselineRun::merge_encoder(inputs, method, device),
            BaselinePair::Decoder(models) => {
                let params = MergeParams::defaults(method);
                let model = decoder::merge_adapters(&models.0, &models.1, &params)?;
                Ok(BaselineRun::new(params, Merged::Decoder(model)))
            }
        }
    }

    /// [`Self::merge`] of an encoder pair.
    fn merge_encoder(
        inputs: &MergeInputs,
        method: MergeMethod,
        device: &candle_core::Device,
    ) -> Result<BaselineRun> {
        let params = MergeParams::defaults(method);
        let merged = merge_models(inputs, &params)?;
        let model = crate::model::encoder::Classifier::from_tensors(
            &inputs.victim.config,
            &merged.f32_tensors(device)?,
            &inputs.victim.dir,
        )?;
        Ok(BaselineRun::new(params, Merged::Encoder(model)))
    }

    fn new(params: MergeParams, model: Merged) -> BaselineRun {
        BaselineRun {
            method: params.method,
            settings: params.settings(),
            model,
            scoring: Scoring::default(),
        }
    }

    /// Scores the next part; the baseline once every part is scored.
    pub fn advance(&mut self, sets: &ScoringSets) -> Result<Option<BaselineScore>> {
        let done = match &self.model {
            Merged::Encoder(m) => self.scoring.advance(m, sets)?,
            Merged::Decoder(m) => self.scoring.advance(m, sets)?,
        };
        if !done {
            return Ok(None);
        }
        Ok(Some(BaselineScore {
            method: self.method,
            settings: self.settings.clone(),
            score: std::mem::take(&mut self.scoring.score),
        }))
    }
}

/// The methods [`merge_baseline`] can run on `inputs`, and the others with why not.
pub fn baseline_methods(inputs: &MergeInputs) -> (Vec<MergeMethod>, Vec<(MergeMethod, String)>) {
    let mut run = Vec::new();
    let mut skipped = Vec::new();
    for method in MergeMethod::ALL {
        if method.needs_base() && inputs.base_dir.is_none() {
            skipped.push((method, NEEDS_BASE.to_string()));
        } else {
            run.push(method);
        }
    }
    (run, skipped)
}
