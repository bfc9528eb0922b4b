//! Scenario files with their expected timelines: `examples/*.toml` (the seeds' stories) and
//! `tests/scenarios/*.toml` (one per policy and lifecycle). Each `X.toml` is replayed on
//! virtual time and must print exactly `X.timeline`. After an intended change, run
//! `ROTA_BLESS=1 cargo test --test it scenarios` and review the diff of the `.timeline` files.

use std::path::{Path, PathBuf};

fn scenario_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["examples", "tests/scenarios"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_scenario_prints_its_expected_timeline() {
    let files = scenario_files();
    assert!(files.len() >= 9, "expected the seed stories and the policy scenarios, found {files:?}");
    let bless = std::env::var_os("ROTA_BLESS").is_some();
    let mut failures = Vec::new();
    for file in files {
        let timeline = rota::scenario::run_file(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let actual = timeline.text();
        let expected_path = file.with_extension("timeline");
        if bless {
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("{} has no expected timeline; run with ROTA_BLESS=1", file.display()));
        if actual != expected {
            let first = actual.lines().zip(expected.lines()).position(|(a, e)| a != e).unwrap_or(0);
            failures.push(format!(
                "{}: first difference at line {}\n  expected: {}\n  actual:   {}",
                file.display(),
                first + 1,
                expected.lines().nth(first).unwrap_or("<end>"),
                actual.lines().nth(first).unwrap_or("<end>")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_scenario_run_twice_gives_the_same_timeline_and_json() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/agent_states.toml");
    let first = rota::scenario::run_file(&file).unwrap();
    let second = rota::scenario::run_file(&file).unwrap();
    assert_eq!(first.text(), second.text());
    assert_eq!(first.json_lines(), second.json_lines());
    let lines: Vec<serde_json::Value> =
        first.json_lines().lines().map(|l| serde_json::from_str(l).expect("each line is one JSON object")).collect();
    assert_eq!(lines.len(), first.entries.len());
    let offered = lines.iter().find(|l| l["type"] == "offered").expect("an offer in the timeline");
    assert_eq!(offered["conversation"], "call-1");
    assert_eq!(offered["agents"][0], "anna");
    assert_eq!(offered["at"], "2026-03-02T08:00:00Z");
    assert_eq!(offered["offset"], "+00:00:00");
    let decided = lines.iter().find(|l| l["type"] == "decided").unwrap();
    assert_eq!(decided["trace"]["policy"], "longest_idle");
    assert_eq!(decided["trace"]["skipped"][0]["agent"], "carla");
    assert_eq!(decided["trace"]["skipped"][0]["reason"], "status_ready");
}

#[test]
fn the_open_line_story_passes_to_the_duty_agent_after_12_hours_and_at_once_when_unavailable() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/open_line.toml");
    let text = rota::scenario::run_file(&file).unwrap().text();
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in\n{text}"))
            .to_string()
    };
    assert!(line("chat-1 offered to olga").starts_with("+00:00:00"));
    assert!(line("chat-1 offer timed out for olga").starts_with("+12:00:00"));
    assert!(line("chat-1 offered to ivan").starts_with("+12:00:00"));
    assert!(line("chat-2 decision").contains("skipped olga (on_vacation)"));
    assert!(line("chat-2 offered to ivan").starts_with("+1d 00:00:00"));
    assert!(line("chat-3 decision").contains("skipped olga (work_day_not_started)"));
    assert!(line("chat-4 offered to olga").starts_with("+5d 00:31:00"));
}

#[test]
fn the_simulate_command_prints_the_timeline_and_json() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rota"))
        .args(["simulate", "examples/open_line.toml"])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(out.status.success());
    let expected = std::fs::read_to_string(root.join("examples/open_line.timeline")).unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rota"))
        .args(["simulate", "--json", "examples/open_line.toml"])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rota"))
        .args(["simulate", "examples/does-not-exist.toml"])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does-not-exist.toml"));
}

#[test]
fn a_malformed_scenario_names_the_event_and_what_is_wrong() {
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let cases = [
        (
            "[[events]]\nat = \"1m\"\narive = { id = \"x\", queue = \"support\" }\n",
            "event 1 (at 1m): unknown variant `arive`, expected one of `arrive`",
        ),
        ("[[events]]\nat = \"1m\"\naccept = { agent = \"x\" }\n", "event 1 (at 1m): missing field `conversation`"),
        (
            "[[events]]\nat = \"1 minute\"\nclose = { conversation = \"x\" }\n",
            "event 1 (at 1 minute): bad duration `1 minute`",
        ),
        ("[[events]]\nat = \"1m\"\n", "event 1 (at 1m): needs exactly one action besides `at`"),
    ];
    for (i, (events, expected)) in cases.iter().enumerate() {
        let path = std::env::temp_dir().join(format!("rota-bad-scenario-{}-{i}.toml", std::process::id()));
        let text = format!("scripts = {:?}\nstart = \"2026-01-01T00:00:00Z\"\n{events}", scripts.display().to_string());
        std::fs::write(&path, text).unwrap();
        let err = match rota::scenario::run_file(&path) {
            Ok(_) => panic!("case {i} ran"),
            Err(e) => e.to_string(),
        };
        let _ = std::fs::remove_file(&path);
        assert!(err.contains(expected), "case {i}: {err}");
    }
}
