//! The search modes on tiny real models: each is deterministic, exact under the caches and
//! early abandonment, and related to the paper's search as designed.

mod common;

use candle_core::Device;
use gms::gms::modes::{new_search, run_to_end, CellsStart, SearchMode};
use gms::gms::search::{GreedySearch, Move, SearchEvent, SearchParams};
use gms::gms::session::Session;

const MODES: [SearchMode; 5] = [
    SearchMode::Paper,
    SearchMode::Cells {
        from: CellsStart::Paper,
    },
    SearchMode::Cells {
        from: CellsStart::Full,
    },
    SearchMode::Beam { width: 3 },
    SearchMode::Refine,
];

/// What a finished search did: every event's move and score, and its answer.
#[derive(Debug, PartialEq)]
struct Run {
    events: Vec<(String, Option<f64>)>,
    best: gms::model::SubstitutionMatrix,
    evaluations: usize,
}

fn run(kit: &common::TinyKit, mode: SearchMode, alpha: f64, fast: bool) -> Run {
    let mut s = Session::load(kit.inputs(false), &Device::Cpu).unwrap();
    s.evaluator.layer_cache = fast;
    s.evaluator.abandonment = fast;
    let params = SearchParams { alpha, patience: 2 };
    let mut search = new_search(mode, params, s.evaluator.num_layers());
    let mut events = Vec::new();
    let best = run_to_end(search.as_mut(), &mut s.evaluator, |e| {
        events.push(match e {
            // Which candidates get abandoned depends on the cutoff, so only complete scores
            // and taken steps are compared between fast and plain runs.
            SearchEvent::Candidate(c) => {
                (format!("candidate {}", c.mv), c.metrics.map(|m| m.score))
            }
            SearchEvent::Step(s) => (format!("step {}", s.point.mv), Some(s.point.metrics.score)),
            SearchEvent::Finished { reason, .. } => (format!("finished {reason:?}"), None),
        })
    })
    .unwrap();
    if !fast {
        events.retain(|(what, _)| !what.starts_with("candidate"));
    }
    Run {
        events,
        best: best.matrix,
        evaluations: search.evaluations(),
    }
}

fn steps(r: &Run) -> Vec<&(String, Option<f64>)> {
    r.events
        .iter()
        .filter(|(w, _)| !w.starts_with("candidate"))
        .collect()
}

#[test]
fn every_mode_is_deterministic_and_exact_under_the_caches() {
    let kit = common::tiny_kit(3);
    for mode in MODES {
        let a = run(&kit, mode, 0.4, true);
        let b = run(&kit, mode, 0.4, true);
        assert_eq!(a, b, "{mode}: two runs differ");
        let plain = run(&kit, mode, 0.4, false);
        assert_eq!(
            steps(&a),
            steps(&plain),
            "{mode}: the caches changed the path"
        );
        assert_eq!(a.best, plain.best, "{mode}");
        assert!(steps(&a).len() >= 3, "{mode}: at least one step was taken");
    }
}

#[test]
fn a_beam_of_one_is_the_papers_search() {
    let kit = common::tiny_kit(3);
    for alpha in [0.0, 0.4, 0.9] {
        let paper = run(&kit, SearchMode::Paper, alpha, true);
        let beam = run(&kit, SearchMode::Beam { width: 1 }, alpha, true);
        assert_eq!(paper, beam, "α {alpha}");
    }
}

#[test]
fn cells_from_the_paper_start_with_its_trace_and_never_score_below_it() {
    let kit = common::tiny_kit(3);
    let mut s = Session::load(kit.inputs(false), &Device::Cpu).unwrap();
    let params = SearchParams {
        alpha: 0.4,
        patience: 2,
    };
    let n = s.evaluator.num_layers();
    let mut paper = GreedySearch::new(params, n);
    let paper_best = paper.run(&mut s.evaluator, |_| {}).unwrap();
    let mut cells = new_search(
        SearchMode::Cells {
            from: CellsStart::Paper,
        },
        params,
        n,
    );
    let best = run_to_end(cells.as_mut(), &mut s.evaluator, |_| {}).unwrap();
    let trace = cells.trace();
    assert_eq!(&trace[..paper.trace().len()], paper.trace());
    assert!(best.metrics.score >= paper_best.metrics.score);
    assert!(cells.evaluations() > paper.evaluations());
    // After the paper's steps: back to its best (unless it ended there), then cell moves.
    let rest = &trace[paper.trace().len()..];
    let ended_at_best = paper.trace().last().unwrap().point.matrix == paper_best.matrix;
    assert_eq!(rest[0].point.mv == Move::ReturnToBest, !ended_at_best);
    assert!(rest
        .iter()
        .skip(usize::from(!ended_at_best))
        .all(|t| matches!(t.point.mv, Move::DropCell(..) | Move::AddCell(..))));
}

#[test]
fn refine_never_ends_below_the_papers_answer_on_either_proxy_set() {
    let kit = common::tiny_kit(3);
    for alpha in [0.2, 0.4, 0.8] {
        let mut s = Session::load(kit.inputs(false), &Device::Cpu).unwrap();
        let params = SearchParams { alpha, patience: 3 };
        let n = s.evaluator.num_layers();
        let paper = GreedySearch::new(params, n)
            .run(&mut s.evaluator, |_| {})
            .unwrap();
        let mut refine = new_search(SearchMode::Refine, params, n);
        let best = run_to_end(refine.as_mut(), &mut s.evaluator, |_| {}).unwrap();
        let entered = &refine.trace()[refine.trace().len().min(1)..];
        for t in entered
            .iter()
            .filter(|t| matches!(t.point.mv, Move::DropCell(..) | Move::AddCell(..)))
        {
            assert!(t.point.counts.clean_correct >= paper.counts.clean_correct);
            assert!(t.point.counts.suspect_hits <= paper.counts.suspect_hits);
        }
        assert!(
            best.counts.clean_correct >= paper.counts.clean_correct,
            "α {alpha}"
        );
        assert!(
            best.counts.suspect_hits <= paper.counts.suspect_hits,
            "α {alpha}"
        );
        assert!(best.metrics.score >= paper.metrics.score);
    }
}

#[test]
fn a_cell_walk_never_revisits_a_state() {
    let kit = common::tiny_kit(2);
    let mut s = Session::load(kit.inputs(false), &Device::Cpu).unwrap();
    let params = SearchParams {
        alpha: 0.4,
        // Long enough to walk downhill for a while from a local optimum.
        patience: 6,
    };
    let mode = SearchMode::Cells {
        from: CellsStart::Full,
    };
    let mut search = new_search(mode, params, s.evaluator.num_layers());
    run_to_end(search.as_mut(), &mut s.evaluator, |e| {
        if let SearchEvent::Candidate(c) = e {
            assert!(c.matrix.count() > 0, "the victim itself is never proposed");
        }
    })
    .unwrap();
    let states: Vec<_> = search.trace().iter().map(|t| &t.point.matrix).collect();
    let distinct: std::collections::HashSet<_> = states.iter().collect();
    assert_eq!(distinct.len(), states.len(), "{states:?}");
    assert_eq!(search.mode(), mode);
}

#[test]
fn replay_under_a_new_alpha_is_served_from_the_cache() {
    let kit = common::tiny_kit(3);
    let mut s = Session::load(kit.inputs(false), &Device::Cpu).unwrap();
    let n = s.evaluator.num_layers();
    for mode in MODES {
        let params = SearchParams {
            alpha: 0.4,
            patience: 2,
        };
        let mut first = new_search(mode, params, n);
        run_to_end(first.as_mut(), &mut s.evaluator, |_| {}).unwrap();
        let mut again = new_search(mode, params, n);
        while again.finished().is_none() {
            assert!(again.next_is_cached(&s.evaluator), "{mode}");
            again.advance(&mut s.evaluator).unwrap();
        }
        assert_eq!(again.trace(), first.trace(), "{mode}");
    }
}

/// Decoders: cell moves range over the architecture's seven modules, and only over the cells
/// both adapters adapt; product moves (the beam) stay inside them too.
#[test]
fn decoder_modes_move_only_on_the_cells_both_adapters_adapt() {
    use gms::model::arch::DecoderArchitecture;
    use gms::model::random_decoder::{RandomAdapterSpec, RandomDecoderSpec};
    use gms::model::Module;
    let spec = RandomDecoderSpec::tiny(DecoderArchitecture::Llama, &common::WORDS, 3, 5);
    let mut proxy = RandomAdapterSpec::tiny(2, "base");
    proxy.targets = vec![Module::Q, Module::V, Module::G, Module::U, Module::D];
    let mut victim = RandomAdapterSpec::tiny(1, "base");
    victim.targets = vec![
        Module::Q,
        Module::K,
        Module::V,
        Module::O,
        Module::U,
        Module::D,
    ];
    let kit = common::tiny_decoder_kit_with(&spec, &victim, &proxy);
    let mut s = Session::load(kit.inputs(false), &Device::Cpu).unwrap();
    let universe = s.evaluator.substitutable().clone();
    assert_eq!(universe.count(), 3 * 4, "Q, V, U, D of three layers");
    let params = SearchParams {
        alpha: 0.4,
        patience: 2,
    };
    for mode in MODES {
        let mut search = new_search(mode, params, s.evaluator.num_layers());
        let mut modules_moved = std::collections::HashSet::new();
        run_to_end(search.as_mut(), &mut s.evaluator, |e| {
            if let SearchEvent::Candidate(c) = e {
                assert_eq!(
                    c.matrix.intersection(&universe),
                    c.matrix,
                    "{mode}: {} has a cell the adapters do not share",
                    c.matrix
                );
                if let Move::DropCell(_, m) | Move::AddCell(_, m) = c.mv {
                    modules_moved.insert(m);
                }
            }
        })
        .unwrap();
        if matches!(mode, SearchMode::Cells { .. } | SearchMode::Refine) {
            // The decoder-only modules (U, D) are moved like the others.
            assert!(
                modules_moved.contains(&Module::D) || modules_moved.contains(&Module::U),
                "{mode}: {modules_moved:?}"
            );
        }
    }
}

/// `--drops absolute` keeps the reference decoder search's rules in every mode: the start is
/// never best, and a walk with a beam of one is still the paper's search.
#[test]
fn absolute_drops_keep_their_rules_in_every_mode() {
    let kit = common::tiny_kit(3);
    let mut s = Session::load(kit.inputs(false), &Device::Cpu).unwrap();
    s.evaluator.drops = gms::gms::score::Drops::Absolute;
    let params = SearchParams {
        alpha: 0.4,
        patience: 2,
    };
    let n = s.evaluator.num_layers();
    let mut paper = GreedySearch::new(params, n);
    paper.run(&mut s.evaluator, |_| {}).unwrap();
    for mode in MODES {
        let mut search = new_search(mode, params, n);
        run_to_end(search.as_mut(), &mut s.evaluator, |_| {}).unwrap();
        let trace = search.trace();
        assert!(!trace[0].improved, "{mode}: the start is never best");
        assert_ne!(
            search.answer().unwrap().mv,
            Move::Start,
            "{mode}: the answer is a step's"
        );
    }
    let mut beam = new_search(SearchMode::Beam { width: 1 }, params, n);
    run_to_end(beam.as_mut(), &mut s.evaluator, |_| {}).unwrap();
    assert_eq!(beam.trace(), paper.trace());
}

/// The journal records the mode and the signal; a resume replays that search exactly (nothing
/// scored again) and refuses another mode.
#[test]
fn a_journaled_search_of_any_mode_resumes_in_its_mode() {
    let kit = common::tiny_kit(3);
    let dir = kit.dir.path();
    let p = |p: &std::path::Path| p.display().to_string();
    let (out, journal) = (dir.join("beam.json"), dir.join("beam.journal.jsonl"));
    let args = vec![
        "search".to_string(),
        "--victim".into(),
        p(&kit.victim),
        "--proxy".into(),
        p(&kit.proxy),
        "--clean".into(),
        p(&kit.clean),
        "--suspect".into(),
        p(&kit.suspect),
        "--patience".into(),
        "2".into(),
        "--device".into(),
        "cpu".into(),
        "--mode".into(),
        "beam".into(),
        "--beam".into(),
        "2".into(),
        "--out".into(),
        p(&out),
        "--journal".into(),
        p(&journal),
    ];
    let run = |args: &[String]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        common::gms(&args)
    };
    let (ok, _, stderr) = run(&args);
    assert!(ok, "{stderr}");
    let header: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&journal)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["mode"], "beam 2");
    assert!(
        header.get("signal").is_none(),
        "the paper's signal is left out"
    );
    let first: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();

    let again = dir.join("again.json");
    let resume = |extra: &[&str]| {
        let mut a = vec![
            "search".to_string(),
            "--resume".into(),
            p(&journal),
            "--device".into(),
            "cpu".into(),
            "--json".into(),
            "--out".into(),
            p(&again),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        run(&a)
    };
    let (ok, stdout, stderr) = resume(&[]);
    assert!(ok, "{stderr}");
    let resumed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&again).unwrap()).unwrap();
    assert_eq!(
        resumed["mode"],
        serde_json::json!({"name": "beam", "width": 2})
    );
    for key in ["cells", "trace", "score", "evaluations"] {
        assert_eq!(resumed[key], first[key], "{key}");
    }
    let journal_event: serde_json::Value = stdout
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "journal")
        .unwrap();
    assert_eq!(journal_event["reevaluated"], 0, "{journal_event}");

    let (ok, _, stderr) = resume(&["--mode", "refine"]);
    assert!(!ok);
    assert!(
        stderr.contains("search mode beam 2") && stderr.contains("--mode"),
        "{stderr}"
    );

    // The workbench's `m` journals a mode change; a resume continues in the mode in force at
    // the journal's end, and the cache still answers what the earlier mode scored.
    let mut text = std::fs::read_to_string(&journal).unwrap();
    text.push_str("{\"kind\":\"action\",\"action\":\"mode\",\"detail\":{\"mode\":\"refine\"}}\n");
    std::fs::write(&journal, text).unwrap();
    let (ok, _, stderr) = resume(&[]);
    assert!(ok, "{stderr}");
    let switched: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&again).unwrap()).unwrap();
    assert_eq!(switched["mode"]["name"], "refine", "{}", switched["mode"]);
    let (ok, _, stderr) = resume(&["--mode", "beam", "--beam", "2"]);
    assert!(!ok);
    assert!(stderr.contains("search mode refine"), "{stderr}");
}
