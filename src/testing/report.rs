//! What `rota test` prints: readable text (the default), TAP version 14, or JUnit XML.

use std::fmt::Write;
use std::time::Duration;

use super::{CaseResult, FileResult};
use crate::script::testkit::FailureKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Human,
    Tap,
    Junit,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "human" => Ok(Format::Human),
            "tap" => Ok(Format::Tap),
            "junit" => Ok(Format::Junit),
            other => Err(format!("unknown format `{other}`: use human, tap or junit")),
        }
    }
}

/// Whether a case broke (an error in the test's own code) rather than failed an expectation.
fn errored(c: &CaseResult) -> bool {
    c.failure.as_ref().is_some_and(|f| f.kind == FailureKind::Error)
}

/// Counts over a run: (passed, failed).
pub fn totals(results: &[FileResult]) -> (usize, usize) {
    let failed: usize = results.iter().map(FileResult::failed).sum();
    let run: usize = results.iter().map(|f| f.cases.len() + f.error.is_some() as usize).sum();
    (run - failed, failed)
}

pub fn render(format: Format, results: &[FileResult], took: Duration) -> String {
    match format {
        Format::Human => human(results, took),
        Format::Tap => tap(results),
        Format::Junit => junit(results, took),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn indent(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}\n")).collect()
}

fn human(results: &[FileResult], took: Duration) -> String {
    let mut out = String::new();
    for f in results {
        let _ = writeln!(out, "{}", f.file);
        if let Some(e) = &f.error {
            let _ = write!(out, "  FAIL  (the file did not run)\n{}", indent(e, "        "));
        }
        for c in &f.cases {
            match &c.failure {
                None => {
                    let _ = writeln!(out, "  ok    {} ({})", c.name, ms(c.took));
                }
                Some(failure) => {
                    let _ =
                        write!(out, "  FAIL  {} ({})\n{}", c.name, ms(c.took), indent(&failure.message, "        "));
                    if !c.output.is_empty() {
                        let _ = write!(out, "        printed:\n{}", indent(&c.output, "          "));
                    }
                }
            }
        }
    }
    let (passed, failed) = totals(results);
    let _ =
        writeln!(out, "\n{passed} passed, {failed} failed, in {} file(s), {:.2} s", results.len(), took.as_secs_f64());
    out
}

/// A TAP description may not hold `#` (it starts a directive) or a line break.
fn tap_text(s: &str) -> String {
    s.replace('\\', "\\\\").replace('#', "\\#").replace('\n', " ")
}

fn yaml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn tap(results: &[FileResult]) -> String {
    let total: usize = results.iter().map(|f| f.cases.len() + f.error.is_some() as usize).sum();
    let mut out = format!("TAP version 14\n1..{total}\n");
    let mut n = 0;
    for f in results {
        if let Some(e) = &f.error {
            n += 1;
            let _ = writeln!(out, "not ok {n} - {}\n  ---\n  message: {}\n  ...", tap_text(&f.file), yaml_string(e));
        }
        for c in &f.cases {
            n += 1;
            let name = tap_text(&format!("{} > {}", f.file, c.name));
            let status = if c.failure.is_some() { "not ok" } else { "ok" };
            let _ = writeln!(out, "{status} {n} - {name}");
            // The YAML block: why it failed, and what the case printed (passing or not).
            if c.failure.is_none() && c.output.is_empty() {
                continue;
            }
            out.push_str("  ---\n");
            if let Some(failure) = &c.failure {
                let severity = if errored(c) { "error" } else { "fail" };
                let _ = writeln!(out, "  severity: {severity}\n  message: {}", yaml_string(&failure.message));
                if let (Some(file), Some(line)) = (&failure.file, failure.line) {
                    let _ = writeln!(out, "  at:\n    file: {}\n    line: {line}", yaml_string(file));
                }
            }
            if !c.output.is_empty() {
                let _ = writeln!(out, "  output: {}", yaml_string(&c.output));
            }
            let _ = writeln!(out, "  duration_ms: {:.3}\n  ...", c.took.as_secs_f64() * 1000.0);
        }
    }
    out
}

fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 has no way to write most control characters at all.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

fn junit(results: &[FileResult], took: Duration) -> String {
    let (passed, failed) = totals(results);
    let errors: usize =
        results.iter().map(|f| f.error.is_some() as usize + f.cases.iter().filter(|c| errored(c)).count()).sum();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"rota test\" tests=\"{}\" failures=\"{}\" errors=\"{errors}\" time=\"{}\">\n",
        passed + failed,
        failed - errors,
        secs(took)
    );
    for f in results {
        let suite_took: Duration = f.cases.iter().map(|c| c.took).sum();
        let errors = f.error.is_some() as usize + f.cases.iter().filter(|c| errored(c)).count();
        let failures = f.cases.iter().filter(|c| c.failure.is_some() && !errored(c)).count();
        let tests = f.cases.len() + f.error.is_some() as usize;
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" time=\"{}\" file=\"{}\">",
            xml(&f.file),
            secs(suite_took),
            xml(&f.file)
        );
        if let Some(e) = &f.error {
            let first = e.lines().next().unwrap_or_default();
            let _ = writeln!(
                out,
                "    <testcase name=\"(load)\" classname=\"{}\" time=\"0.000\">\n      <error message=\"{}\" type=\"load\">{}</error>\n    </testcase>",
                xml(&f.file),
                xml(first),
                xml(e)
            );
        }
        for c in &f.cases {
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\"",
                xml(&c.name),
                xml(&f.file),
                secs(c.took)
            );
            match &c.failure {
                None if c.output.is_empty() => out.push_str("/>\n"),
                None => {
                    let _ = writeln!(out, ">\n      <system-out>{}</system-out>\n    </testcase>", xml(&c.output));
                }
                Some(failure) => {
                    let first = failure.message.lines().next().unwrap_or_default();
                    let tag = if errored(c) { "error" } else { "failure" };
                    let _ = writeln!(
                        out,
                        ">\n      <{tag} message=\"{}\" type=\"{tag}\">{}</{tag}>",
                        xml(first),
                        xml(&failure.message)
                    );
                    if !c.output.is_empty() {
                        let _ = writeln!(out, "      <system-out>{}</system-out>", xml(&c.output));
                    }
                    out.push_str("    </testcase>\n");
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
