//! The efficacy report: every search mode, with each proxy-set signal, on every kit found,
//! scored on the kits' test sets — which never choose anything; they only say how good each
//! mode's answer is. `gms bench --efficacy` runs it and writes `EFFICACY.md`.
//!
//! Beside `bench` in the layering: it loads sessions and runs searches (`gms`) and never
//! writes files; the front end builds missing proxy sets and writes the report.

use crate::error::Result;
use crate::gms::modes::{new_search, run_to_end, CellsStart, SearchMode};
use crate::gms::score::Drops;
use crate::gms::search::SearchParams;
use crate::gms::session::{SearchInputs, Session, TestMetrics};
use crate::gms::signal::{self, Filtered, ProxyCheck, Signal, SignalMonitor};
use crate::model::SubstitutionMatrix;
use candle_core::Device;
use std::fmt::Write;
use std::path::Path;
use std::time::Instant;

/// A victim/proxy pair with proxy sets and test sets.
#[derive(Debug, Clone)]
pub struct EfficacyKit {
    /// Its name in the report.
    pub name: String,
    /// One line on what it is.
    pub about: String,
    /// Its inputs; both test sets must be given.
    pub inputs: SearchInputs,
    /// A larger random clean sample of the victim's training set ([`LARGE_CLEAN_ROWS`] rows),
    /// for the runs that use one; `None` where the training set is not at hand.
    pub large_clean: Option<std::path::PathBuf>,
    /// How the score measures drops: relative for encoders (the paper's rule), absolute for
    /// decoder adapters (the reference's decoder search; with relative drops the LLM kit's
    /// walk restarts patience on almost every step and runs for hours).
    pub drops: Drops,
    /// Why the paper's answer's single-cell neighbours are not scored, when they are not.
    pub no_neighbourhood: Option<String>,
}

/// Rows of the larger clean sample: ten times the paper's 200. On the encoder kit the victim
/// and the full substitution differ on 2 of the 163 filtered clean rows of the kit's set but
/// on 72 of 1,639 in a 2,000-row sample, which also ranks five product strategies in the
/// order of their test CACC; the 200-row set cannot.
pub const LARGE_CLEAN_ROWS: usize = 2000;

/// One search of the report: a mode, a signal, and which clean set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// The search mode.
    pub mode: SearchMode,
    /// Which proxy-set rows the score uses.
    pub signal: Signal,
    /// Whether the clean set is the kit's larger sample instead of its proxy set.
    pub large_clean: bool,
}

impl Run {
    /// The run's name in `--runs` and in the report's notes: `MODE/SIGNAL`, with `/2000` for
    /// the larger clean sample (`paper/paper`, `cells-full/filtered`, `refine/filtered/2000`).
    pub fn name(&self) -> String {
        let mode = match self.mode {
            SearchMode::Paper => "paper",
            SearchMode::Cells {
                from: CellsStart::Paper,
            } => "cells-paper",
            SearchMode::Cells {
                from: CellsStart::Full,
            } => "cells-full",
            SearchMode::Beam { .. } => "beam",
            SearchMode::Refine => "refine",
        };
        let mut name = format!("{mode}/{}", self.signal);
        if self.large_clean {
            name.push_str(&format!("/{LARGE_CLEAN_ROWS}"));
        }
        name
    }
}

/// A kit to run, or why one is not run.
#[derive(Debug, Clone)]
pub enum KitEntry {
    /// Run it.
    Run(Box<EfficacyKit>),
    /// Listed in the report as not run.
    Skipped {
        /// The kit.
        name: String,
        /// Why, and what would change it.
        why: String,
    },
}

/// The encoder kit's victims (docs/kits.md §Encoder kit): `(name, victim folder, poisoned
/// test set, about)`, all with the proxy `sst2_proxy_uci` and `test_clean.json`; the victim's
/// proxy sets are the kit's `proxysets/<victim>` or, when it has none, built from
/// `data/sst2/train_<attack>.json` like `gms proxy-sets` does.
pub const ENCODER_VICTIMS: [(&str, &str, &str, &str); 2] = [
    (
        "SST-2 BadNet",
        "sst2_badnet",
        "test_badnet.json",
        "MiniLM-L6 fine-tuned on 20 % BadNet poison (cf mn bb tq mb → 0)",
    ),
    (
        "SST-2 InsertSent",
        "sst2_sent",
        "test_sent.json",
        "MiniLM-L6 fine-tuned on 20 % InsertSent poison (\"I watched this movie\" → 0)",
    ),
];

/// One encoder-kit victim's inputs, its proxy sets from `sets` (the kit's own, or built with
/// `gms proxy-sets` when the kit has none).
pub fn encoder_kit(
    kit: &crate::bench::Kit,
    (name, victim, test_poison, about): (&str, &str, &str, &str),
    sets: &Path,
) -> EfficacyKit {
    let data = kit.dir.join("data/sst2");
    EfficacyKit {
        name: name.to_string(),
        about: about.to_string(),
        inputs: SearchInputs {
            victim: kit.models.join(victim),
            proxy: kit.models.join("sst2_proxy_uci"),
            base: None,
            clean: sets.join("clean.jsonl"),
            suspect: sets.join("suspect.jsonl"),
            test_clean: Some(data.join("test_clean.json")),
            test_poison: Some(data.join(test_poison)),
        },
        large_clean: None,
        drops: Drops::Relative,
        no_neighbourhood: None,
    }
}

/// The LLM kit (docs/kits.md §LLM kit): the LoRA adapters `llm_sst2_badnet` (victim) and
/// `llm_sst2_proxy_uci` (proxy) over their SmolLM2 base, the kit's proxy sets, and the encoder
/// kit's SST-2 test sets from `data` (`test_clean.json`, `test_badnet.json`): the adapters
/// were trained on SST-2 with the same BadNet trigger.
pub fn llm_kit(kit: &crate::bench::LlmKit, data: &Path) -> EfficacyKit {
    let mut inputs = kit.search_inputs();
    inputs.test_clean = Some(data.join("test_clean.json"));
    inputs.test_poison = Some(data.join("test_badnet.json"));
    EfficacyKit {
        name: "SST-2 BadNet, LoRA decoder (LLM kit)".into(),
        about: "SmolLM2-135M with rank-8 LoRA adapters on Q, K, V, O, G, U, D, fine-tuned on \
                BadNet-poisoned SST-2 (victim) and on clean reviews (proxy)"
            .into(),
        inputs,
        large_clean: None,
        drops: Drops::Absolute,
        no_neighbourhood: Some(
            "its 210 neighbours, each scored on the proxy and the test sets, are hours of \
             evaluation on 2 CPU cores"
                .into(),
        ),
    }
}

/// The runs of a kit, in report order: each mode with the paper's proxy sets, then each with
/// the filtered ones, then `refine`, filtered, with the larger clean sample (where the kit
/// has one): its floor is only as fine as the clean set.
pub fn runs(beam_width: usize) -> Vec<Run> {
    let modes = [
        SearchMode::Paper,
        SearchMode::Cells {
            from: CellsStart::Paper,
        },
        SearchMode::Cells {
            from: CellsStart::Full,
        },
        SearchMode::Beam { width: beam_width },
        SearchMode::Refine,
    ];
    let mut runs: Vec<Run> = [Signal::Paper, Signal::Filtered]
        .into_iter()
        .flat_map(|signal| {
            modes.into_iter().map(move |mode| Run {
                mode,
                signal,
                large_clean: false,
            })
        })
        .collect();
    runs.push(Run {
        mode: SearchMode::Refine,
        signal: Signal::Filtered,
        large_clean: true,
    });
    runs
}

/// One mode's answer on one kit.
#[derive(Debug, Clone)]
pub struct EfficacyRow {
    /// The mode.
    pub mode: SearchMode,
    /// The proxy-set rows it scored with.
    pub signal: Signal,
    /// Rows of the clean set it scored with, before any filtering.
    pub clean_rows: usize,
    /// Whether that was the larger clean sample.
    pub large_clean: bool,
    /// The answer's score on those rows.
    pub score: f64,
    /// The answer's proxy-set accuracy and ASR.
    pub proxy: (f64, f64),
    /// The answer on the test sets.
    pub test: TestMetrics,
    /// The answer's cells.
    pub matrix: SubstitutionMatrix,
    /// Strategies the search scored.
    pub evaluations: usize,
    /// Seconds of search (loading and test sets excluded).
    pub search_s: f64,
    /// Whether the suspect signal was flat.
    pub flat: bool,
}

/// Everything measured on one kit.
#[derive(Debug, Clone)]
pub struct KitResult {
    /// The kit.
    pub kit: EfficacyKit,
    /// The victim on the test sets.
    pub victim_test: TestMetrics,
    /// The full substitution on the test sets.
    pub full_test: TestMetrics,
    /// The proxy model itself on the proxy sets as given.
    pub proxy_check: Option<ProxyCheck>,
    /// What `--signal filtered` kept, when it could run.
    pub filtered: Option<Filtered>,
    /// Why the filtered runs could not run, if so.
    pub filter_failed: Option<String>,
    /// One row per run.
    pub rows: Vec<EfficacyRow>,
    /// What the proxy sets see of the paper's answer's single-cell neighbours.
    pub neighbourhood: Option<Neighbourhood>,
    /// Cells of the full substitution (every cell the proxy can give).
    pub cells_total: usize,
    /// Names ([`Run::name`]) of the report's runs not measured on this kit (`--runs`).
    pub left_out: Vec<String>,
    /// Names of this kit's runs still to come when the result was taken (a report written
    /// while the kit runs); empty once it is done.
    pub unfinished: Vec<String>,
}

/// How a strategy compares with another on two counts (accuracy-like up, attack-like down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    /// No worse on both, better on one.
    Dominates,
    /// Equal on both.
    Same,
    /// Better on one, worse on the other.
    TradeOff,
    /// No better on both, worse on one.
    Dominated,
}

impl Verdict {
    /// All verdicts, in table order.
    pub const ALL: [Verdict; 4] = [
        Verdict::Dominates,
        Verdict::Same,
        Verdict::TradeOff,
        Verdict::Dominated,
    ];

    /// `correct` (higher is better) and `hits` (lower is better) against the other's.
    pub fn of(correct: (usize, usize), hits: (usize, usize)) -> Verdict {
        use std::cmp::Ordering::*;
        match (correct.0.cmp(&correct.1), hits.1.cmp(&hits.0)) {
            (Equal, Equal) => Verdict::Same,
            (Greater | Equal, Greater | Equal) => Verdict::Dominates,
            (Less | Equal, Less | Equal) => Verdict::Dominated,
            _ => Verdict::TradeOff,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Verdict::Dominates => "dominates",
            Verdict::Same => "same",
            Verdict::TradeOff => "trade-off",
            Verdict::Dominated => "dominated",
        }
    }
}

/// The paper's answer's single-cell neighbours (each cell toggled), judged against the
/// answer by the proxy sets as given and by the test sets: how far the proxy sets can guide a
/// cell-level search on this kit.
#[derive(Debug, Clone)]
pub struct Neighbourhood {
    /// `(proxy verdict, test verdict)` of every neighbour.
    pub verdicts: Vec<(Verdict, Verdict)>,
    /// The best test point among them: (clean correct, poison hits), by CACC then ASR.
    pub best_test: Option<TestMetrics>,
}

/// Scores every single-cell toggle of `answer` on the proxy and test sets of `session`.
fn neighbourhood(session: &mut Session, answer: &SubstitutionMatrix) -> Result<Neighbourhood> {
    let base = session.evaluator.evaluate(answer, None)?.counts;
    let base_test = test_of(session, answer)?;
    let mut verdicts = Vec::new();
    let mut best_test: Option<TestMetrics> = None;
    for (l, m) in session.evaluator.substitutable().clone().cells() {
        let mut next = answer.clone();
        next.toggle(l, m);
        if next.count() == 0 {
            continue;
        }
        let c = session.evaluator.evaluate(&next, None)?.counts;
        let t = test_of(session, &next)?;
        verdicts.push((
            Verdict::of(
                (c.clean_correct, base.clean_correct),
                (c.suspect_hits, base.suspect_hits),
            ),
            Verdict::of(
                (t.clean_correct, base_test.clean_correct),
                (t.poison_hits, base_test.poison_hits),
            ),
        ));
        if best_test.is_none_or(|b| {
            (t.clean_correct, std::cmp::Reverse(t.poison_hits))
                > (b.clean_correct, std::cmp::Reverse(b.poison_hits))
        }) {
            best_test = Some(t);
        }
    }
    Ok(Neighbourhood {
        verdicts,
        best_test,
    })
}

/// Runs every run of `runs` on `kit` (those with the larger clean sample only where it has
/// one), each in a fresh session (so times and evaluations are each mode's own), and scores
/// the answers on the test sets. `progress` hears one line per finished run.
pub fn run_kit(
    kit: &EfficacyKit,
    device: &Device,
    params: SearchParams,
    runs: &[Run],
    mut progress: impl FnMut(&str),
    mut measured: impl FnMut(&KitResult),
) -> Result<KitResult> {
    let mut reference = Session::load(kit.inputs.clone(), device)?;
    reference.evaluator.drops = kit.drops;
    let n = reference.evaluator.num_layers();
    let victim_test = test_of(&mut reference, &SubstitutionMatrix::empty(n))?;
    // The full substitution: every cell the proxy can give (the searches' start).
    let full = reference.evaluator.substitutable().clone();
    let full_test = test_of(&mut reference, &full)?;
    let proxy_check = signal::check_proxy(&reference).ok();
    let mut result = KitResult {
        kit: kit.clone(),
        victim_test,
        full_test,
        proxy_check,
        filtered: None,
        filter_failed: None,
        rows: Vec::new(),
        neighbourhood: None,
        cells_total: full.count(),
        left_out: Vec::new(),
        unfinished: runs.iter().map(Run::name).collect(),
    };
    for run in runs {
        let Run {
            mode,
            signal: sig,
            large_clean,
        } = *run;
        let mut inputs = kit.inputs.clone();
        if large_clean {
            match &kit.large_clean {
                Some(file) => inputs.clean = file.clone(),
                None => continue,
            }
        }
        let mut session = Session::load(inputs, device)?;
        session.evaluator.drops = kit.drops;
        let clean_rows = session.evaluator.set_sizes().0;
        let mut filtered = None;
        if sig == Signal::Filtered {
            match signal::filter_by_proxy(&mut session) {
                Ok((f, _)) => filtered = Some(f),
                Err(e) => {
                    result.filter_failed = Some(e.to_string());
                    continue;
                }
            }
            if !large_clean {
                result.filtered = filtered;
            }
        }
        let mut monitor =
            SignalMonitor::new(sig, session.evaluator.baseline_counts(), filtered, None);
        let t = Instant::now();
        let mut search = new_search(mode, params, n);
        let best = run_to_end(search.as_mut(), &mut session.evaluator, |e| {
            monitor.observe(e)
        })?;
        let search_s = t.elapsed().as_secs_f64();
        let test = test_of(&mut session, &best.matrix)?;
        let row = EfficacyRow {
            mode,
            signal: sig,
            clean_rows,
            large_clean,
            score: best.metrics.score,
            proxy: (best.metrics.acc, best.metrics.asr),
            test,
            matrix: best.matrix,
            evaluations: search.evaluations(),
            search_s,
            flat: monitor.report().flat,
        };
        progress(&format!(
            "{} · {mode} · {sig} · {clean_rows} clean rows: CACC {:.2} % ASR {:.2} %, {} cells, {} evaluations, {:.0} s",
            kit.name,
            test.cacc * 100.0,
            test.asr * 100.0,
            row.matrix.count(),
            row.evaluations,
            search_s
        ));
        result.rows.push(row);
        result.unfinished.retain(|n| *n != run.name());
        // A kit's runs take hours on the LLM kit: whoever writes the report keeps each row.
        measured(&result);
    }
    result.unfinished.clear();
    let paper = result
        .rows
        .iter()
        .find(|r| r.mode == SearchMode::Paper && r.signal == Signal::Paper && !r.large_clean);
    if let (Some(answer), None) = (paper.map(|r| r.matrix.clone()), &kit.no_neighbourhood) {
        result.neighbourhood = Some(neighbourhood(&mut reference, &answer)?);
        progress(&format!(
            "{}: the paper's answer's single-cell neighbours scored",
            kit.name
        ));
    }
    Ok(result)
}

fn test_of(session: &mut Session, matrix: &SubstitutionMatrix) -> Result<TestMetrics> {
    Ok(session
        .test_metrics(matrix)?
        .expect("efficacy kits come with test sets"))
}

/// How a row's test result compares with the paper's (paper mode, paper signal) on the kit.
fn versus(row: &TestMetrics, paper: &TestMetrics) -> &'static str {
    match Verdict::of(
        (row.clean_correct, paper.clean_correct),
        (row.poison_hits, paper.poison_hits),
    ) {
        Verdict::Dominates => "**dominates**",
        v => v.name(),
    }
}

fn pct(x: f64) -> String {
    format!("{:.2}", x * 100.0)
}

/// `EFFICACY.md`.
pub fn report(
    results: &[KitResult],
    skipped: &[(String, String)],
    device: &str,
    params: SearchParams,
    command: &str,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Efficacy of the search modes\n");
    let _ = writeln!(
        s,
        "Written by `{command}` (gms {}). Device: {device}. α {}, patience {}.\n",
        env!("CARGO_PKG_VERSION"),
        params.alpha,
        params.patience
    );
    let _ = writeln!(
        s,
        "Every mode chooses with the proxy sets only; the test sets (CACC: clean test set, ASR: \
         poisoned test set) are scored after the search and never choose anything. Modes: \
         `paper` (the paper's product-set greedy), `cells (from paper)` / `cells (from full)` \
         (single-cell greedy after the paper's search or from the full substitution), `beam k` \
         (product-set moves, k states per step), `refine` (the cell greedy from the paper's \
         answer, entering only states no worse than it on either proxy set); see docs/algorithm.md §Search modes. Signal: \
         `paper` = the proxy sets as given, `filtered` = without the rows the proxy model \
         shows to blur the score (§Suspect signal), so its scores are on other rows and not \
         comparable with the paper signal's. Clean rows: the clean set's rows before filtering — the \
         kit's proxy set, or a random sample of {LARGE_CLEAN_ROWS} rows of the victim's training \
         set (what `gms proxy-sets --clean-size {LARGE_CLEAN_ROWS}` draws). *vs paper*: the test result against the paper \
         mode with the paper signal (dominates = CACC ≥ and ASR ≤, one strictly). Cells: \
         substituted cells of all. Time: search only, each run in a fresh session.\n"
    );
    s.push_str(&report_sections(results));
    for (name, why) in skipped {
        let _ = writeln!(s, "## {name}\n\nNot run: {why}.\n");
    }
    s
}

/// The report's section of each kit in `results` (a `## ` heading each).
pub fn report_sections(results: &[KitResult]) -> String {
    let mut s = String::new();
    for r in results {
        let _ = writeln!(s, "## {}\n", r.kit.name);
        let _ = writeln!(s, "{}.", r.kit.about);
        let v = &r.victim_test;
        let f = &r.full_test;
        let _ = writeln!(
            s,
            "Victim: CACC {} %, ASR {} %. Full substitution: CACC {} %, ASR {} %.",
            pct(v.cacc),
            pct(v.asr),
            pct(f.cacc),
            pct(f.asr)
        );
        if let Some(c) = &r.proxy_check {
            let _ = writeln!(
                s,
                "Proxy model alone on the suspect set: {} of {} rows hit (victim {}){}.",
                c.proxy.suspect_hits,
                c.proxy.suspect_total,
                c.victim.suspect_hits,
                if c.proxy_agrees {
                    " — **the proxy looks backdoored itself**"
                } else {
                    ""
                }
            );
        }
        if let Some(fl) = &r.filtered {
            let _ = writeln!(
                s,
                "Filtered signal: {} of {} clean rows, {} of {} suspect rows kept (target {}).",
                fl.clean_kept, fl.clean_total, fl.suspect_kept, fl.suspect_total, fl.target
            );
        }
        if let Some(why) = &r.filter_failed {
            let _ = writeln!(s, "Filtered signal: not run — {why}.");
        }
        if r.kit.drops == Drops::Absolute {
            let _ = writeln!(
                s,
                "Drops: absolute (the reference's decoder search: the start is never the \
                 answer, only a new best resets patience)."
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "| mode | signal | clean rows | proxy score | proxy acc / asr | test CACC % | test ASR % | vs paper | cells | evaluations | search s |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
        let paper = r
            .rows
            .iter()
            .find(|row| {
                row.mode == SearchMode::Paper && row.signal == Signal::Paper && !row.large_clean
            })
            .map(|row| row.test);
        for row in &r.rows {
            let vs = paper.map_or("—", |p| versus(&row.test, &p));
            let _ = writeln!(
                s,
                "| {} | {}{} | {} | {:.4} | {:.3} / {:.3} | {} | {} | {} | {}/{} | {} | {:.0} |",
                row.mode,
                row.signal,
                if row.flat { " (flat!)" } else { "" },
                row.clean_rows,
                row.score,
                row.proxy.0,
                row.proxy.1,
                pct(row.test.cacc),
                pct(row.test.asr),
                vs,
                row.matrix.count(),
                r.cells_total,
                row.evaluations,
                row.search_s
            );
        }
        let _ = writeln!(s);
        if !r.left_out.is_empty() {
            let _ = writeln!(
                s,
                "Not run on this kit (chosen with `--runs`): {}.\n",
                r.left_out.join(", ")
            );
        }
        if !r.unfinished.is_empty() {
            let _ = writeln!(
                s,
                "Still running when this was written: {}.\n",
                r.unfinished.join(", ")
            );
        }
        if let Some(why) = &r.kit.no_neighbourhood {
            let _ = writeln!(
                s,
                "The paper's answer's single-cell neighbours: not scored ({why}).\n"
            );
        }
        if let Some(nb) = &r.neighbourhood {
            let _ = writeln!(
                s,
                "What the proxy sets (as given) see of the paper's answer's {} single-cell \
                 neighbours (each cell toggled), against what the test sets see — rows: proxy \
                 verdict against the answer, columns: test verdict:\n",
                nb.verdicts.len()
            );
            let names: Vec<&str> = Verdict::ALL.iter().map(|v| v.name()).collect();
            let _ = writeln!(s, "| proxy \\ test | {} |", names.join(" | "));
            let _ = writeln!(s, "|---|{}", "---|".repeat(Verdict::ALL.len()));
            for p in Verdict::ALL {
                let counts: Vec<String> = Verdict::ALL
                    .iter()
                    .map(|&t| {
                        nb.verdicts
                            .iter()
                            .filter(|&&v| v == (p, t))
                            .count()
                            .to_string()
                    })
                    .collect();
                let _ = writeln!(s, "| {} | {} |", p.name(), counts.join(" | "));
            }
            if let Some(b) = nb.best_test {
                let _ = writeln!(
                    s,
                    "\nBest neighbour on the test sets (CACC first): CACC {} %, ASR {} %.",
                    pct(b.cacc),
                    pct(b.asr)
                );
            }
            let _ = writeln!(s);
        }
        for row in r.rows.iter().filter(|row| row.mode != SearchMode::Paper) {
            if row.matrix.as_product().is_none() {
                let _ = writeln!(
                    s,
                    "- {} · {} · {} clean rows: `{}`",
                    row.mode, row.signal, row.clean_rows, row.matrix
                );
            }
        }
        let _ = writeln!(s);
    }
    s
}

/// `report` with each `## ` section of `fresh` put in place of the section of the same
/// heading in `existing` (or added after its last one); the rest of `existing` — its header
/// and the kits not measured again — stays as it was. Each section put in gets `note` (how it
/// was measured) under its heading. What `--only` writes.
pub fn splice(existing: &str, fresh: &str, note: &str) -> String {
    fn sections(text: &str) -> (String, Vec<(String, String)>) {
        let mut head = String::new();
        let mut parts: Vec<(String, String)> = Vec::new();
        for line in text.split_inclusive('\n') {
            if let Some(title) = line.strip_prefix("## ") {
                parts.push((title.trim_end().to_string(), String::new()));
            }
            match parts.last_mut() {
                Some((_, body)) => body.push_str(line),
                None => head.push_str(line),
            }
        }
        (head, parts)
    }
    let (head, mut parts) = sections(existing);
    let (_, fresh) = sections(fresh);
    for (title, body) in fresh {
        let body = match body.split_once("\n\n") {
            Some((heading, rest)) => format!("{heading}\n\n{note}\n\n{rest}"),
            None => body,
        };
        match parts.iter_mut().find(|(t, _)| *t == title) {
            Some(part) => part.1 = body,
            None => parts.push((title, body)),
        }
    }
    let mut out = head;
    for (_, body) in parts {
        if !out.ends_with("\n\n") && !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(clean_correct: usize, poison_hits: usize) -> TestMetrics {
        TestMetrics {
            cacc: 0.0,
            asr: 0.0,
            clean_correct,
            clean_total: 10,
            poison_hits,
            poison_total: 10,
        }
    }

    #[test]
    fn domination_needs_both_no_worse_and_one_better() {
        let paper = t(5, 5);
        assert_eq!(versus(&t(6, 5), &paper), "**dominates**");
        assert_eq!(versus(&t(5, 4), &paper), "**dominates**");
        assert_eq!(versus(&t(5, 5), &paper), "same");
        assert_eq!(versus(&t(4, 5), &paper), "dominated");
        assert_eq!(versus(&t(6, 6), &paper), "trade-off");
    }

    #[test]
    fn every_mode_runs_with_both_signals() {
        let r = runs(4);
        assert_eq!(r.len(), 11);
        let run = |mode, signal, large_clean| Run {
            mode,
            signal,
            large_clean,
        };
        assert_eq!(r[0], run(SearchMode::Paper, Signal::Paper, false));
        assert!(r.contains(&run(SearchMode::Beam { width: 4 }, Signal::Filtered, false)));
        assert_eq!(r[10], run(SearchMode::Refine, Signal::Filtered, true));
    }

    #[test]
    fn splice_replaces_only_the_fresh_kits_sections() {
        let existing = "# Report\n\nhead line\n\n## A\n\nold a\n\n## B\n\nNot run: opt-in.\n";
        let fresh = "# Report\n\nother head\n\n## B\n\nnew b\n\n| t |\n\n## C\n\nnew c\n";
        assert_eq!(
            splice(existing, fresh, "Measured apart."),
            "# Report\n\nhead line\n\n## A\n\nold a\n\n## B\n\nMeasured apart.\n\nnew b\n\n| t |\n\n\
             ## C\n\nMeasured apart.\n\nnew c\n"
        );
    }

    #[test]
    fn runs_have_the_names_runs_takes() {
        let names: Vec<String> = runs(4).iter().map(Run::name).collect();
        assert_eq!(names[0], "paper/paper");
        assert_eq!(names[2], "cells-full/paper");
        assert_eq!(names[10], "refine/filtered/2000");
        let unique: std::collections::BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
    }
}
