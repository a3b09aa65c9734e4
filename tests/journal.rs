//! Recorded searches (issue 12): `gms search` journals every evaluation as it goes; a search
//! killed with SIGKILL resumes from its journal to the same answer without scoring again what
//! it had scored; the journal reader refuses changed inputs and malformed lines.

mod common;

use common::{gms_output, tiny_kit, TinyKit};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Layers of the test models: 12 layers give 18 candidates a step, so a search runs long
/// enough (tens of evaluations) for a kill to land in the middle of it.
const LAYERS: usize = 12;

fn search_args(kit: &TinyKit, out: &Path, journal: &Path) -> Vec<String> {
    let p = |p: &Path| p.display().to_string();
    [
        "search",
        "--victim",
        &p(&kit.victim),
        "--proxy",
        &p(&kit.proxy),
        "--clean",
        &p(&kit.clean),
        "--suspect",
        &p(&kit.suspect),
        "--patience",
        "8",
        "--device",
        "cpu",
        "--json",
        "--out",
        &p(out),
        "--journal",
        &p(journal),
    ]
    .map(String::from)
    .to_vec()
}

fn run(args: &[String]) -> std::process::Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    gms_output(&args)
}

fn resume_args(journal: &Path, out: &Path) -> Vec<String> {
    [
        "search",
        "--resume",
        &journal.display().to_string(),
        "--device",
        "cpu",
        "--json",
        "--out",
        &out.display().to_string(),
    ]
    .map(String::from)
    .to_vec()
}

fn strategy(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The last `journal` event of a `--json` run: (recorded, new, reevaluated).
fn journal_event(stdout: &[u8]) -> (u64, u64, u64) {
    let text = String::from_utf8_lossy(stdout);
    let e: serde_json::Value = text
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "journal")
        .expect("a journal event");
    let n = |k: &str| e[k].as_u64().unwrap();
    (n("recorded"), n("new"), n("reevaluated"))
}

fn lines_of(path: &Path, kind: &str) -> usize {
    let needle = format!("\"kind\":\"{kind}\"");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&needle))
        .count()
}

/// A finished search's strategy and journal, for the tests that only read journals.
struct Recorded {
    kit: TinyKit,
    out: PathBuf,
    journal: PathBuf,
}

fn recorded() -> Recorded {
    let kit = tiny_kit(LAYERS);
    let out = kit.dir.path().join("full.json");
    let journal = kit.dir.path().join("full.journal.jsonl");
    let o = run(&search_args(&kit, &out, &journal));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Recorded { kit, out, journal }
}

#[test]
fn a_search_killed_with_sigkill_resumes_to_the_same_answer_without_rescoring() {
    let Recorded { kit, out, journal } = recorded();
    let full = strategy(&out);
    let total = lines_of(&journal, "evaluation");
    assert!(
        total >= 20,
        "the search is too short to kill mid-way: {total}"
    );

    // The same search, killed once a third of its evaluations are journaled.
    let killed_out = kit.dir.path().join("killed.json");
    let killed_journal = kit.dir.path().join("killed.journal.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gms"))
        .args(search_args(&kit, &killed_out, &killed_journal))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while lines_of(&killed_journal, "evaluation") < total / 3 {
        assert!(Instant::now() < deadline, "the journal did not grow");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    let kept = lines_of(&killed_journal, "evaluation");
    assert!(
        lines_of(&killed_journal, "finished") == 0 && kept < total,
        "the kill landed after the search ended ({kept} of {total} evaluations)"
    );
    assert!(!killed_out.exists());

    let o = run(&resume_args(&killed_journal, &killed_out));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (recorded, new, reevaluated) = journal_event(&o.stdout);
    assert_eq!(
        reevaluated, 0,
        "a recorded complete strategy was scored again"
    );
    assert!(
        recorded >= kept as u64 - 1 && recorded > 0,
        "{recorded} of {kept}"
    );
    assert!(new > 0);
    // Same cells, scores, trace and evaluation count as the uninterrupted run.
    assert_eq!(strategy(&killed_out), full);
    common::report(&format!(
        "journal: killed after {kept} of {total} evaluations; resumed with {recorded} recorded, {new} new, {reevaluated} re-evaluated"
    ));

    // `gms report` shows the resumed search's answer.
    let o = gms_output(&["report", "--json", &killed_journal.display().to_string()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["best"]["finished"], true);
    assert_eq!(report["best"]["cells"], full["cells"]);
    assert_eq!(
        report["trace"].as_array().unwrap().len(),
        full["trace"].as_array().unwrap().len()
    );
}

#[test]
fn journal_errors_name_the_changed_input_or_the_bad_line() {
    let Recorded { kit, out, journal } = recorded();
    let full = strategy(&out);
    let text = std::fs::read_to_string(&journal).unwrap();

    // A truncated last line is dropped with a note; the search resumes to the same answer.
    let cut = kit.dir.path().join("cut.journal.jsonl");
    let lines: Vec<&str> = text.lines().collect();
    let half = lines.len() / 2;
    let last = lines[half];
    let body = format!("{}\n{}", lines[..half].join("\n"), &last[..last.len() / 2]);
    std::fs::write(&cut, body).unwrap();
    let cut_out = kit.dir.path().join("cut.json");
    let o = run(&resume_args(&cut, &cut_out));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("truncated last line"), "{stderr}");
    assert_eq!(strategy(&cut_out), full);
    assert_eq!(journal_event(&o.stdout).2, 0);

    // A malformed line elsewhere is an error naming file:line, exit code 2.
    let bad = kit.dir.path().join("bad.journal.jsonl");
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[2] = "{\"kind\":\"evaluation\",\"cells\":".into();
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let o = run(&resume_args(&bad, &kit.dir.path().join("bad.json")));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:3:", bad.display())),
        "{stderr}"
    );
    let o = gms_output(&["report", &bad.display().to_string()]);
    assert_eq!(o.status.code(), Some(2));

    // A changed input is named, exit code 2, nothing written.
    let mut clean = std::fs::read_to_string(&kit.clean).unwrap();
    clean.push_str(&format!(
        "{}\n",
        serde_json::json!({"sentence": "good", "label": 0})
    ));
    std::fs::write(&kit.clean, clean).unwrap();
    let changed_out = kit.dir.path().join("changed.json");
    let o = run(&resume_args(&journal, &changed_out));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&kit.clean.display().to_string()) && stderr.contains("changed"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(!changed_out.exists());
}

#[test]
fn report_prints_the_trace_and_the_best_strategy() {
    let Recorded {
        kit: _kit,
        out,
        journal,
    } = recorded();
    let full = strategy(&out);
    let o = gms_output(&["report", &journal.display().to_string()]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("best: step"), "{stdout}");
    let steps = full["trace"].as_array().unwrap().len();
    assert_eq!(
        stdout
            .lines()
            .filter(|l| {
                let mut words = l.split_whitespace();
                let step = words.next().is_some_and(|w| w.parse::<usize>().is_ok());
                step && words
                    .next()
                    .is_some_and(|m| m == "start" || m.starts_with('-'))
            })
            .count(),
        steps,
        "{stdout}"
    );
}
