//! Argument groups shared by several subcommands.

use crate::gms::modes::{CellsStart, SearchMode};
use crate::gms::score::Drops;
use crate::gms::search::SearchParams;
use crate::gms::session::SearchInputs;
use crate::gms::signal::Signal;
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

/// The search mode and the proxy-set signal (`search`, `tui`, `bench --efficacy` lists them).
#[derive(Debug, Clone, Args)]
pub struct ModeArgs {
    /// Search mode: `paper` (the paper's product-set greedy), `cells` (single-cell greedy),
    /// `beam` (product-set moves with a beam of --beam states), or `refine` (the cell greedy
    /// from the paper's answer, never worse than it on either proxy set).
    #[arg(long, value_enum, default_value_t = ModeName::Paper)]
    pub mode: ModeName,
    /// Beam width of `--mode beam`.
    #[arg(long, value_name = "K", default_value_t = crate::gms::modes::DEFAULT_BEAM_WIDTH)]
    pub beam: usize,
    /// Where `--mode cells` starts: the paper's answer or the full substitution.
    #[arg(long, value_enum, default_value_t = CellsFrom::Paper)]
    pub cells_from: CellsFrom,
    /// Proxy-set rows the score uses: `paper` (as given) or `filtered` (without the rows the
    /// proxy model shows to blur it; docs/algorithm.md §Suspect signal).
    #[arg(long, value_enum, default_value_t = SignalName::Paper)]
    pub signal: SignalName,
}

/// `--mode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeName {
    /// The paper's search.
    Paper,
    /// Single-cell greedy.
    Cells,
    /// Product-set beam.
    Beam,
    /// Cell greedy from the paper's answer, never below it.
    Refine,
}

/// `--cells-from` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CellsFrom {
    /// After the paper's search, from its answer.
    Paper,
    /// From the full substitution.
    Full,
}

/// `--signal` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SignalName {
    /// The proxy sets as given.
    Paper,
    /// Filtered by the proxy model's predictions.
    Filtered,
}

impl ModeArgs {
    /// The validated mode.
    pub fn mode(&self) -> crate::Result<SearchMode> {
        match self.mode {
            ModeName::Paper => Ok(SearchMode::Paper),
            ModeName::Cells => Ok(SearchMode::Cells {
                from: match self.cells_from {
                    CellsFrom::Paper => CellsStart::Paper,
                    CellsFrom::Full => CellsStart::Full,
                },
            }),
            ModeName::Beam => SearchMode::Beam { width: self.beam }.validated(),
            ModeName::Refine => Ok(SearchMode::Refine),
        }
    }

    /// The mode and signal of a search, or of the resumed search `resume` recorded: a
    /// resume keeps the journal's (like its α and patience); a mode or signal given other
    /// than the default must be the journal's.
    pub fn resolve(
        &self,
        resume: Option<&crate::gms::journal::Journal>,
    ) -> crate::Result<(SearchMode, Signal)> {
        let (mode, signal) = (self.mode()?, self.signal());
        let Some(journal) = resume else {
            return Ok((mode, signal));
        };
        let bad = |problem: String| {
            crate::GmsError::bad_file(
                &journal.path,
                problem,
                "drop --mode/--signal to resume the recorded search, or start a new search",
            )
        };
        let (_, recorded_signal, recorded_mode) = journal.modes()?;
        if mode != SearchMode::Paper && mode != recorded_mode {
            return Err(bad(format!(
                "recorded with search mode {recorded_mode}, not {mode}"
            )));
        }
        if signal != Signal::Paper && signal != recorded_signal {
            return Err(bad(format!(
                "recorded with signal {recorded_signal}, not {signal}"
            )));
        }
        Ok((recorded_mode, recorded_signal))
    }

    /// The signal.
    pub fn signal(&self) -> Signal {
        match self.signal {
            SignalName::Paper => Signal::Paper,
            SignalName::Filtered => Signal::Filtered,
        }
    }
}
