//! Argument groups shared by several subcommands.

use crate::gms::score::Drops;
use crate::gms::search::SearchParams;
use crate::gms::session::SearchInputs;
use clap::Args;
use std::path::PathBuf;

/// The models and datasets of a search.
#[derive(Debug, Clone, Args)]
pub struct SessionArgs {
    /// Backdoored (victim) model folder, or its PEFT LoRA adapter folder.
    #[arg(long, value_name = "DIR")]
    pub victim: Option<PathBuf>,
    /// Proxy (donor) model folder, or its PEFT LoRA adapter folder: same architecture (same
    /// base), trained on other data.
    #[arg(long, value_name = "DIR")]
    pub proxy: Option<PathBuf>,
    /// Base model folder of the two adapters; default: the victim adapter's
    /// base_model_name_or_path (a folder, or a Hub id in the local Hugging Face cache). For
    /// encoders in gms tui: the pre-trained checkpoint the merge baselines (B) need.
    #[arg(long, value_name = "DIR")]
    pub base: Option<PathBuf>,
    /// Clean proxy set D_c (JSONL/TSV/CSV with labels).
    #[arg(long, value_name = "FILE")]
    pub clean: Option<PathBuf>,
    /// Suspect proxy set D_p (rows labelled with the attacker's target).
    #[arg(long, value_name = "FILE")]
    pub suspect: Option<PathBuf>,
    /// Clean test set, for CACC of the result.
    #[arg(long, value_name = "FILE")]
    pub test_clean: Option<PathBuf>,
    /// Poisoned test set (trigger inserted, relabelled to the target), for ASR of the result.
    #[arg(long, value_name = "FILE")]
    pub test_poison: Option<PathBuf>,
    /// Compute device: auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Evaluation dtype. bf16/f16 are for GPUs (on the CPU they are slower than f32); the
    /// status line says how many proxy-set predictions they change from f32.
    #[arg(long, value_enum, default_value_t = EvalDtype::F32)]
    pub dtype: EvalDtype,
}

/// The dtypes evaluation can run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalDtype {
    /// 32-bit float: exact reproduction of the reference.
    F32,
    /// bfloat16: f32's range, 8 bits of mantissa.
    Bf16,
    /// IEEE half: 11 bits of mantissa, range to 65504.
    F16,
}

impl EvalDtype {
    /// The candle dtype.
    pub fn dtype(self) -> candle_core::DType {
        match self {
            EvalDtype::F32 => candle_core::DType::F32,
            EvalDtype::Bf16 => candle_core::DType::BF16,
            EvalDtype::F16 => candle_core::DType::F16,
        }
    }
}

impl SessionArgs {
    /// Whether any model or dataset path was given.
    pub fn any_given(&self) -> bool {
        self.victim.is_some()
            || self.proxy.is_some()
            || self.base.is_some()
            || self.clean.is_some()
            || self.suspect.is_some()
    }

    /// The inputs, requiring the four mandatory paths.
    pub fn inputs(&self) -> anyhow::Result<SearchInputs> {
        let need = |v: &Option<PathBuf>, flag: &str| {
            v.clone()
                .ok_or_else(|| anyhow::anyhow!("{flag} is required (or use --demo)"))
        };
        Ok(SearchInputs {
            victim: need(&self.victim, "--victim")?,
            proxy: need(&self.proxy, "--proxy")?,
            base: self.base.clone(),
            clean: need(&self.clean, "--clean")?,
            suspect: need(&self.suspect, "--suspect")?,
            test_clean: self.test_clean.clone(),
            test_poison: self.test_poison.clone(),
        })
    }
}

/// α, patience and how drops are measured.
#[derive(Debug, Clone, Args)]
pub struct ParamArgs {
    /// Accuracy weight α in [0, 1] of score = (1-α)·ΔASR + α·(1-ΔACC).
    #[arg(long, default_value_t = crate::gms::DEFAULT_ALPHA, allow_negative_numbers = true)]
    pub alpha: f64,
    /// Greedy steps without improvement before the search stops.
    #[arg(long, default_value_t = crate::gms::DEFAULT_PATIENCE)]
    pub patience: usize,
    /// Score drops relative to the victim's figures (the paper's search), or absolute with the
    /// reference decoder search's two other rules (docs/algorithm.md §The reference's decoder
    /// search).
    #[arg(long, value_enum, default_value_t = DropsArg::Relative)]
    pub drops: DropsArg,
}

/// `--drops` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DropsArg {
    /// `(acc0 − acc) / acc0`, `(asr0 − asr) / asr0`.
    Relative,
    /// `acc0 − acc`, `asr0 − asr`; step 0 never best; only a new best resets patience.
    Absolute,
}

impl ParamArgs {
    /// Validated parameters.
    pub fn params(&self) -> crate::Result<SearchParams> {
        SearchParams::validated(self.alpha, self.patience)
    }

    /// The drops the score measures.
    pub fn drops(&self) -> Drops {
        match self.drops {
            DropsArg::Relative => Drops::Relative,
            DropsArg::Absolute => Drops::Absolute,
        }
    }
}
