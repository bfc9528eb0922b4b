//! `rota test` through the binary: the example rule sets' own tests pass; a broken rule makes
//! a test fail with expected vs actual at the test's line and exit code 1; failures, runtime
//! errors, runaway tests and files that do not load are reported and the run goes on; TAP and
//! JUnit output are read back by the parsers CI systems use.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

use common::{fixture, Scratch};

fn rota_test(dir: &Path, args: &[&str]) -> (i32, String) {
    let Output { status, stdout, stderr } =
        Command::new(env!("CARGO_BIN_EXE_rota")).arg("test").arg(dir).args(args).output().expect("rota runs");
    let stdout = String::from_utf8(stdout).unwrap();
    assert!(status.code().is_some(), "rota test was killed: {}", String::from_utf8_lossy(&stderr));
    (status.code().unwrap(), stdout)
}

fn root(dir: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)
}

#[test]
fn every_example_rule_set_passes_its_tests() {
    for dir in ["scripts", "examples"] {
        let (code, out) = rota_test(&root(dir), &[]);
        assert_eq!(code, 0, "{dir}:\n{out}");
        assert!(out.contains(" passed, 0 failed"), "{dir}:\n{out}");
    }
}

#[test]
fn a_broken_rule_fails_a_test_with_expected_actual_and_the_line() {
    let scratch = Scratch::new(&[]);
    for entry in std::fs::read_dir(root("scripts")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        // The support queue's offers now time out after 30 seconds instead of 20.
        let text = text.replace(r#"options = { timeout = "20s" },"#, r#"options = { timeout = "30s" },"#);
        scratch.write(&[(path.file_name().unwrap().to_str().unwrap(), &text)]);
    }
    let (code, out) = rota_test(&scratch.0, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("  FAIL  customer support (longest idle) > moves on to the next agent when an offer times out after 20 seconds"),
        "{out}"
    );
    assert!(out.contains(r#"queues_test.lua:85: c1: expected an offer to { "bjorn" }, got { "anna" }"#), "{out}");
}

#[test]
fn failures_errors_runaways_and_broken_files_are_reported_and_the_run_goes_on() {
    let (code, out) = rota_test(&fixture("testrun"), &["--cpu-ms", "200"]);
    assert_eq!(code, 1);
    let expected = [
        "broken_test.lua\n  FAIL  (the file did not run)\n        broken_test.lua:5: Expected ')' (to close '(' at line 4), got 'end'",
        "  FAIL  failures > reports expected and actual at the line",
        "        fail_test.lua:8: c1: expected an offer to { \"a2\" }, got { \"a1\" }\n        printed:\n          offered:\ta1",
        "        fail_test.lua:12: unknown agent `nobody`",
        "        fail_test.lua:17: attempt to index nil with 'field'\n        stack traceback:\n        \tfail_test.lua:17:",
        "        fail_test.lua:23: CPU budget of 200ms exceeded",
        "  ok    failures > still runs after the others # with a hash",
        "  ok    q > after a minute > passes to a2",
        "  ok    plain assert works at the top level",
        "4 passed, 5 failed, in 3 file(s)",
    ];
    for e in expected {
        assert!(out.contains(e), "missing:\n{e}\n--- in:\n{out}");
    }
    // Output of passing cases is not shown.
    assert!(!out.contains("after each"), "{out}");
}

#[test]
fn filter_picks_cases_by_name() {
    let (code, out) = rota_test(&fixture("testrun"), &["--filter", "after a minute"]);
    // One case runs; a file that does not load is still reported, as it cannot be filtered.
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("  ok    q > after a minute > passes to a2"), "{out}");
    assert!(out.contains("1 passed, 1 failed, in 2 file(s)"), "{out}");
    assert!(!out.contains("fail_test.lua"), "{out}");
    let out = Command::new(env!("CARGO_BIN_EXE_rota"))
        .arg("test")
        .arg(root("scripts"))
        .args(["--filter", "no such case"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "a run with no cases does not pass");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("no test case's name contains `no such case` (in 3 test file(s)"), "{said}");
}

#[test]
fn tap_output_is_tap_14() {
    let (_, out) = rota_test(&fixture("testrun"), &["--cpu-ms", "200", "--format", "tap"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["TAP version 14", "1..9"]);
    let results: Vec<&&str> = lines.iter().filter(|l| l.starts_with("ok ") || l.starts_with("not ok ")).collect();
    assert_eq!(results.len(), 9);
    for (i, l) in results.iter().enumerate() {
        let n = (i + 1).to_string();
        assert!(l.strip_prefix("not ok ").or(l.strip_prefix("ok ")).unwrap().starts_with(&format!("{n} - ")), "{l}");
    }
    assert!(out.contains("ok 6 - fail_test.lua > failures > still runs after the others \\# with a hash"), "{out}");
    assert!(
        out.contains("not ok 2 - fail_test.lua > failures > reports expected and actual at the line\n  ---\n  severity: fail\n  message: \"fail_test.lua:8: c1: expected an offer to { \\\"a2\\\" }, got { \\\"a1\\\" }\"\n  at:\n    file: \"fail_test.lua\"\n    line: 8\n  output: \"offered:\\ta1\\n\"\n"),
        "{out}"
    );
    // A runtime error is an error, not a failed expectation; what passing cases print shows too.
    assert!(out.contains("not ok 4 - fail_test.lua > failures > reports a runtime error with a traceback\n  ---\n  severity: error\n"), "{out}");
    assert!(
        out.contains("ok 7 - pass_test.lua > q > offers to a1 first\n  ---\n  output: \"after each\\n\"\n"),
        "{out}"
    );
}

#[test]
fn junit_output_is_read_by_junitparser() {
    let (_, out) = rota_test(&fixture("testrun"), &["--cpu-ms", "200", "--format", "junit"]);
    let scratch = Scratch::new(&[("report.xml", &out)]);
    let script = r#"
import sys
from junitparser import JUnitXml, Failure, Error
report = JUnitXml.fromfile(sys.argv[1])
for suite in report:
    print("suite", suite.name, suite.tests, suite.failures, suite.errors)
    for case in suite:
        kinds = [type(r).__name__ for r in case.result]
        print("case", case.classname, "|", case.name, "|", ",".join(kinds) or "passed", "|", (case.result[0].message if case.result else ""))
"#;
    let parsed = Command::new("python3")
        .args(["-c", script])
        .arg(scratch.0.join("report.xml"))
        .output()
        .expect("python3 with junitparser (.ci/run installs it)");
    assert!(
        parsed.status.success(),
        "junitparser refused the report: {}\n{out}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    let text = String::from_utf8(parsed.stdout).unwrap();
    for line in [
        "suite broken_test.lua 1 0 1",
        // Two expectations failed (one a refused input); two cases broke (a Lua error, a runaway).
        "suite fail_test.lua 5 2 2",
        "suite pass_test.lua 3 0 0",
        "case broken_test.lua | (load) | Error | broken_test.lua:5: Expected ')' (to close '(' at line 4), got 'end'",
        "case fail_test.lua | failures > reports expected and actual at the line | Failure | fail_test.lua:8: c1: expected an offer to { \"a2\" }, got { \"a1\" }",
        "case fail_test.lua | failures > reports a refused input at the line | Failure | fail_test.lua:12: unknown agent `nobody`",
        "case fail_test.lua | failures > reports a runtime error with a traceback | Error | fail_test.lua:17: attempt to index nil with 'field'",
        "case fail_test.lua | failures > stops a runaway test and goes on | Error | fail_test.lua:23: CPU budget of 200ms exceeded",
        "case pass_test.lua | q > after a minute > passes to a2 | passed |",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
}

/// A table that contains itself, handed to the test API, fails that one case with a message;
/// `rota test` does not abort, and the next case runs.
#[test]
fn a_test_argument_that_contains_itself_fails_its_case_only() {
    let scratch = Scratch::new(&[
        (
            "rules.lua",
            "agents.define { id = \"a1\" }\nqueues.define { id = \"q\", agents = { \"a1\" }, policy = \"ring_all\" }\n",
        ),
        (
            "loop_test.lua",
            r#"local test = require("rota.test")
it("hands over a table that contains itself", function()
    local loop = {}
    loop.again = loop
    test.arrive("q", { attributes = { loop = loop } })
end)
it("still runs the next case", function()
    test.arrive("q")
end)
"#,
        ),
    ]);
    let (code, out) = rota_test(&scratch.0, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("tables nested more than 64 deep"), "{out}");
    assert!(out.contains("1 passed, 1 failed"), "{out}");
}

/// A test reads every candidate a decision skipped, however many: `rota test` names them all,
/// where a server's traces name the first ten and count the rest.
#[test]
fn a_test_finds_the_fifteenth_agent_a_decision_skipped() {
    let scratch = Scratch::new(&[
        (
            "rules.lua",
            r#"
local all = {}
for i = 1, 20 do agents.define { id = "a" .. i }; all[i] = "a" .. i end
queues.define { id = "q", agents = all, policy = "longest_idle" }
"#,
        ),
        (
            "rules_test.lua",
            r#"
local test = require("rota.test")
describe("a large queue", function()
    it("names every skipped agent", function()
        local c = test.arrive("q")
        test.expect_skipped(c, "a15")
    end)
end)
"#,
        ),
    ]);
    let (code, out) = rota_test(&scratch.0, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 passed, 0 failed"), "{out}");
}
