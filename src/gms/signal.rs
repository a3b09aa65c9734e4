//! Whether the proxy sets can see the backdoor at all, and a sharper signal built from them.
//!
//! The score is `(1-α)·ΔASR + α·(1-ΔACC)` over the suspect and clean proxy sets
//! (docs/algorithm.md §Metrics and score). It only guides the search while the suspect set's
//! ASR moves between strategies. When the poisoned rows carry a label the proxy predicts
//! anyway (say, the majority label), every strategy hits every suspect row, ΔASR is 0
//! throughout, the score tracks accuracy alone and the search returns a near-victim model with
//! the backdoor intact — silently. Two checks say so:
//!
//! - the **flat-signal check** ([`SignalMonitor`]): from the first step on, the spread of
//!   suspect hits and clean correct over every strategy scored completely, the victim
//!   included; flat when the suspect hits stay within 1 % of the rows of the victim's;
//! - the **proxy check** ([`ProxyCheck`]): the proxy model itself (its own tokenizer,
//!   embeddings and head — not the full substitution, which keeps the victim's embeddings and
//!   head) on the suspect set. A proxy that hits about as many suspect rows as the victim
//!   either carries the same backdoor or agrees with the rows' label anyway; either way,
//!   substituting its modules cannot lower ASR below its own.
//!
//! The sharper signal, `--signal filtered` ([`Signal::Filtered`], [`filter_by_proxy`]), uses
//! the proxy's own predictions to drop the rows that blur the two terms: from the suspect set,
//! the rows the proxy itself labels as stored, the target (a clean model predicts them anyway, so they
//! cannot tell a purified model from a backdoored one, and a strategy that merely breaks them
//! is paid as if it removed the backdoor); from the clean set, the rows labelled with the target
//! that the proxy labels otherwise (most are poisoned rows: the random clean sample is about a
//! quarter poison on the encoder kit, and keeping the backdoor scores as accuracy on them).

use crate::data::{Dataset, Example};
use crate::error::{GmsError, Result};
use crate::gms::score::Counts;
use crate::gms::search::SearchEvent;
use crate::gms::session::Session;
use crate::model::SubstitutionMatrix;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Which proxy-set rows the score is computed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    /// The proxy sets as given (the paper).
    #[default]
    Paper,
    /// Without the rows the proxy model shows to blur the score (module docs).
    Filtered,
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Signal::Paper => "paper",
            Signal::Filtered => "filtered",
        })
    }
}

/// Reads back what Display writes (the journal header records it so).
impl std::str::FromStr for Signal {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Signal, String> {
        match text {
            "paper" => Ok(Signal::Paper),
            "filtered" => Ok(Signal::Filtered),
            _ => Err(format!(
                "unknown signal \"{text}\" (expected paper or filtered)"
            )),
        }
    }
}

/// A proxy whose own suspect-set ASR reaches this share of the victim's looks backdoored
/// itself (or agrees with the suspect label anyway). On the encoder kit the clean proxy hits
/// about half the suspect rows the victim hits: those rows' true label is the target.
pub const PROXY_AGREES_SHARE: f64 = 0.9;

/// The proxy model itself and the victim on the proxy sets as given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxyCheck {
    /// The victim's counts.
    pub victim: Counts,
    /// The proxy model's own counts (its tokenizer, embeddings, layers and head).
    pub proxy: Counts,
    /// The label most suspect rows carry: the attack's target (lowest on ties).
    pub target: u32,
    /// Suspect rows the proxy labels otherwise than stored: what `--signal filtered` keeps.
    pub suspect_disputed: usize,
    /// Whether the proxy hits at least [`PROXY_AGREES_SHARE`] of the victim's suspect hits.
    pub proxy_agrees: bool,
}

/// Rows and predictions of both models on the proxy sets as given, in file order.
struct ProxyView {
    clean: Dataset,
    suspect: Dataset,
    /// `[clean, suspect]` predictions of the proxy model.
    proxy: [Vec<u32>; 2],
    /// `[clean, suspect]` predictions of the victim.
    victim: [Vec<u32>; 2],
}

/// The label most rows carry (lowest on ties); 0 for no rows.
fn majority_label(d: &Dataset) -> u32 {
    let mut counts = std::collections::BTreeMap::new();
    for e in &d.examples {
        *counts.entry(e.label as u32).or_insert(0usize) += 1;
    }
    counts
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map_or(0, |(&l, _)| l)
}

fn proxy_view(session: &Session) -> Result<ProxyView> {
    // The files were read and their labels checked when the session loaded.
    let clean = Dataset::read(&session.inputs.clean)?;
    let suspect = Dataset::read(&session.inputs.suspect)?;
    let ev = &session.evaluator;
    let victim_view = SubstitutionMatrix::empty(ev.num_layers());
    // Each model reads the text with its own tokenizer: vocabularies may differ.
    let run = |proxy: bool| -> Result<[Vec<u32>; 2]> {
        let model = if proxy {
            &session.proxy
        } else {
            &session.victim
        };
        let mut out = [Vec::new(), Vec::new()];
        for (slot, d) in out.iter_mut().zip([&clean, &suspect]) {
            let set = session.encode_for(model, &d.examples)?;
            *slot = if proxy {
                ev.proxy_predictions(&set)?
            } else {
                ev.predictions(&victim_view, &set)?
            };
        }
        Ok(out)
    };
    Ok(ProxyView {
        proxy: run(true)?,
        victim: run(false)?,
        clean,
        suspect,
    })
}

impl ProxyView {
    fn counts(&self, preds: &[Vec<u32>; 2]) -> Counts {
        let agree = |d: &Dataset, p: &[u32]| {
            d.examples
                .iter()
                .zip(p)
                .filter(|(e, &p)| e.label as u32 == p)
                .count()
        };
        Counts {
            clean_correct: agree(&self.clean, &preds[0]),
            clean_total: self.clean.len(),
            suspect_hits: agree(&self.suspect, &preds[1]),
            suspect_total: self.suspect.len(),
        }
    }

    fn check(&self) -> ProxyCheck {
        let victim = self.counts(&self.victim);
        let proxy = self.counts(&self.proxy);
        let target = majority_label(&self.suspect);
        ProxyCheck {
            suspect_disputed: self
                .suspect
                .examples
                .iter()
                .zip(&self.proxy[1])
                .filter(|(e, &p)| e.label as u32 != p)
                .count(),
            proxy_agrees: victim.suspect_hits > 0
                && proxy.suspect_hits as f64 >= PROXY_AGREES_SHARE * victim.suspect_hits as f64,
            victim,
            proxy,
            target,
        }
    }
}

/// Runs the proxy model itself (and the victim) on the session's proxy sets as given.
pub fn check_proxy(session: &Session) -> Result<ProxyCheck> {
    Ok(proxy_view(session)?.check())
}

/// What `--signal filtered` kept of the proxy sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filtered {
    /// The target label (the suspect set's majority label).
    pub target: u32,
    /// Clean rows kept, of `clean_total`.
    pub clean_kept: usize,
    /// Clean rows given.
    pub clean_total: usize,
    /// Suspect rows kept, of `suspect_total`.
    pub suspect_kept: usize,
    /// Suspect rows given.
    pub suspect_total: usize,
}

/// Rebuilds the session's evaluator on the filtered proxy sets (module docs): suspect rows the
/// proxy model labels otherwise than stored, clean rows except those labelled with the target
/// (the suspect set's majority label) that the proxy labels otherwise. Fails when no suspect
/// row would be left.
pub fn filter_by_proxy(session: &mut Session) -> Result<(Filtered, ProxyCheck)> {
    let view = proxy_view(session)?;
    let check = view.check();
    let target = check.target;
    let keep = |d: &Dataset, preds: &[u32], keep: &dyn Fn(u32, u32) -> bool| -> Vec<Example> {
        d.examples
            .iter()
            .zip(preds)
            .filter(|(e, &p)| keep(e.label as u32, p))
            .map(|(e, _)| e.clone())
            .collect()
    };
    let suspect = keep(&view.suspect, &view.proxy[1], &|l, p| p != l);
    let clean = keep(&view.clean, &view.proxy[0], &|l, p| {
        l != target || p == target
    });
    if suspect.is_empty() {
        return Err(GmsError::BadArgument {
            flag: "--signal",
            value: "filtered".into(),
            problem: format!(
                "the proxy model predicts the stored label of all {} suspect rows, so no row is \
                 left to show the backdoor: use a proxy that does not carry it, or suspect rows \
                 whose true label is not the target",
                view.suspect.len()
            ),
        });
    }
    let filtered = Filtered {
        target,
        clean_kept: clean.len(),
        clean_total: view.clean.len(),
        suspect_kept: suspect.len(),
        suspect_total: view.suspect.len(),
    };
    let clean = session.encode_for(&session.victim, &clean)?;
    let suspect = session.encode_for(&session.victim, &suspect)?;
    session.evaluator = session.evaluator.with_sets(clean, suspect)?;
    tracing::info!(?filtered, "proxy sets filtered by the proxy's predictions");
    Ok((filtered, check))
}

/// Readies `session` for a search with `signal` and returns the monitor that follows it: with
/// `Filtered`, rebuilds the evaluator on the filtered proxy sets (an error when no suspect row
/// is left); with `Paper`, runs the proxy check, which the search does without when it fails
/// (it needs the proxy's own tokenizer).
pub fn prepare(session: &mut Session, signal: Signal) -> Result<SignalMonitor> {
    let (filtered, check) = match signal {
        Signal::Filtered => {
            let (f, c) = filter_by_proxy(session)?;
            (Some(f), Some(c))
        }
        Signal::Paper => match check_proxy(session) {
            Ok(c) => (None, Some(c)),
            Err(e) => {
                tracing::warn!("proxy check skipped: {e}");
                (None, None)
            }
        },
    };
    Ok(SignalMonitor::new(
        signal,
        session.evaluator.baseline_counts(),
        filtered,
        check,
    ))
}

/// The suspect-signal report: what the checks found, for the worker's event, the CLI's
/// warning and the strategy JSON's `suspect_signal`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuspectSignal {
    /// The rows the score is computed on.
    pub signal: Signal,
    /// With `--signal filtered`, what was kept.
    pub filtered: Option<Filtered>,
    /// The proxy model itself on the proxy sets as given.
    pub proxy_check: Option<ProxyCheck>,
    /// The victim's counts on the scored sets.
    pub victim: Counts,
    /// Distinct strategies scored completely so far (the victim not counted).
    pub strategies: usize,
    /// Fewest and most suspect rows hit, over the victim and those strategies.
    pub suspect_hits: (usize, usize),
    /// Fewest and most clean rows correct, over the victim and those strategies.
    pub clean_correct: (usize, usize),
    /// Whether every strategy scored hit the victim's suspect rows give or take 1 % of the rows.
    pub flat: bool,
    /// What the checks found and what the user can do.
    pub warnings: Vec<SignalWarning>,
}

/// Which check a warning comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// The suspect set's ASR does not move.
    FlatSignal,
    /// The proxy alone hits about as many suspect rows as the victim.
    ProxyAgrees,
}

/// One finding, in plain words with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalWarning {
    /// The check.
    pub kind: WarningKind,
    /// The message.
    pub text: String,
}

/// Follows a search's events and says whether its suspect signal moves.
#[derive(Debug, Clone)]
pub struct SignalMonitor {
    signal: Signal,
    filtered: Option<Filtered>,
    proxy_check: Option<ProxyCheck>,
    victim: Counts,
    seen: HashSet<SubstitutionMatrix>,
    hits: (usize, usize),
    correct: (usize, usize),
}

impl SignalMonitor {
    /// A monitor for a search scored against `victim`'s counts.
    pub fn new(
        signal: Signal,
        victim: Counts,
        filtered: Option<Filtered>,
        proxy_check: Option<ProxyCheck>,
    ) -> SignalMonitor {
        SignalMonitor {
            signal,
            filtered,
            proxy_check,
            victim,
            seen: HashSet::new(),
            hits: (victim.suspect_hits, victim.suspect_hits),
            correct: (victim.clean_correct, victim.clean_correct),
        }
    }

    /// Takes in a search event (complete scores only; replays count once).
    pub fn observe(&mut self, event: &SearchEvent) {
        let (matrix, acc, asr) = match event {
            SearchEvent::Candidate(c) => match c.metrics {
                Some(m) => (&c.matrix, m.acc, m.asr),
                None => return,
            },
            SearchEvent::Step(s) => (&s.point.matrix, s.point.metrics.acc, s.point.metrics.asr),
            SearchEvent::Finished { .. } => return,
        };
        if !self.seen.insert(matrix.clone()) {
            return;
        }
        // Metrics are count / total exactly, so rounding recovers the counts.
        let hits = (asr * self.victim.suspect_total as f64).round() as usize;
        let correct = (acc * self.victim.clean_total as f64).round() as usize;
        self.hits = (self.hits.0.min(hits), self.hits.1.max(hits));
        self.correct = (self.correct.0.min(correct), self.correct.1.max(correct));
    }

    /// Suspect hits the spread may have and still count as flat: 1 % of the rows (none
    /// below 100 rows; 2 of the paper's 200). A row or two is noise; at 200 rows and α 0.4
    /// it moves the score by at most 0.006, less than one clean row does.
    pub fn tolerance(&self) -> usize {
        self.victim.suspect_total / 100
    }

    /// The report so far.
    pub fn report(&self) -> SuspectSignal {
        let n = self.victim.suspect_total;
        let strategies = self.seen.len();
        let flat = strategies > 0 && self.hits.1 - self.hits.0 <= self.tolerance();
        let mut warnings = Vec::new();
        if flat {
            let filter_hint = match &self.proxy_check {
                Some(c) if self.signal == Signal::Paper && c.suspect_disputed > 0 => format!(
                    " search with --signal filtered, which keeps only the {} suspect rows the \
                     proxy labels otherwise;",
                    c.suspect_disputed
                ),
                _ => String::new(),
            };
            warnings.push(SignalWarning {
                kind: WarningKind::FlatSignal,
                text: format!(
                    "suspect signal is flat: every one of the {strategies} strategies scored hits \
                 {}–{} of the {n} suspect rows, as the victim does ({}); the score tracks clean \
                 accuracy alone, so the search drifts toward the victim's own modules and its \
                 answer says nothing about the backdoor. What to do: check that the suspect \
                 rows carry the attack's target label and that it is not a label the models \
                 predict for these rows anyway;{filter_hint} or rebuild the proxy sets from the \
                 victim's training file (gms proxy-sets).",
                    self.hits.0, self.hits.1, self.victim.suspect_hits
                ),
            });
        }
        if let Some(c) = self.proxy_check.as_ref().filter(|c| c.proxy_agrees) {
            warnings.push(SignalWarning {
                kind: WarningKind::ProxyAgrees,
                text: format!(
                "the proxy looks backdoored itself: alone it predicts the suspect label for {} \
                 of {} suspect rows (the victim: {}). Either it carries the same backdoor or \
                 those rows' label is what a clean model predicts anyway; substituting its \
                 modules cannot lower ASR below its own. What to do: use a proxy trained on \
                 other data, or suspect rows whose true label is not the target.",
                c.proxy.suspect_hits, c.proxy.suspect_total, c.victim.suspect_hits
            ),
            });
        }
        SuspectSignal {
            signal: self.signal,
            filtered: self.filtered,
            proxy_check: self.proxy_check.clone(),
            victim: self.victim,
            strategies,
            suspect_hits: self.hits,
            clean_correct: self.correct,
            flat,
            warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gms::score::{score_counts, Baseline};
    use crate::gms::search::{Move, Point, TraceStep};

    fn step(layers: usize, hits: usize, correct: usize) -> SearchEvent {
        let counts = Counts {
            clean_correct: correct,
            clean_total: 200,
            suspect_hits: hits,
            suspect_total: 200,
        };
        let metrics = score_counts(0.4, Baseline { acc: 1.0, asr: 1.0 }, &counts);
        SearchEvent::Step(TraceStep {
            step: 0,
            point: Point::of_matrix(
                Move::Start,
                SubstitutionMatrix::full(&crate::model::ENCODER_MODULES, layers),
                counts,
                metrics,
            ),
            improved: true,
            no_improve: 0,
        })
    }

    fn victim() -> Counts {
        Counts {
            clean_correct: 190,
            clean_total: 200,
            suspect_hits: 200,
            suspect_total: 200,
        }
    }

    #[test]
    fn a_suspect_set_that_never_moves_is_flat() {
        let mut m = SignalMonitor::new(Signal::Paper, victim(), None, None);
        assert!(!m.report().flat, "nothing scored yet");
        m.observe(&step(2, 199, 150));
        m.observe(&step(3, 200, 120));
        let r = m.report();
        assert!(r.flat);
        assert_eq!((r.strategies, r.suspect_hits), (2, (199, 200)));
        assert_eq!(r.warnings[0].kind, WarningKind::FlatSignal);
        assert!(r.warnings[0].text.starts_with("suspect signal is flat"));
        m.observe(&step(4, 101, 150));
        assert!(!m.report().flat);
        assert!(m.report().warnings.is_empty());
    }

    #[test]
    fn replays_count_once() {
        let mut m = SignalMonitor::new(Signal::Paper, victim(), None, None);
        m.observe(&step(2, 150, 150));
        m.observe(&step(2, 150, 150));
        assert_eq!(m.report().strategies, 1);
    }

    #[test]
    fn majority_label_takes_the_lowest_on_ties() {
        let rows = |labels: &[usize]| {
            Dataset::from_examples(
                "/tmp/x.jsonl",
                labels
                    .iter()
                    .map(|&label| Example {
                        text: "x".into(),
                        text_pair: None,
                        label,
                        line: 1,
                    })
                    .collect(),
            )
        };
        assert_eq!(majority_label(&rows(&[1, 0, 1])), 1);
        assert_eq!(majority_label(&rows(&[1, 0])), 0);
    }
}
