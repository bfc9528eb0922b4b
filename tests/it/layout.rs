//! The boundaries ARCHITECTURE.md states, checked on the source: which layer may import which
//! library, that the domain has no arrow back to the engine, scripts, store or API, and that the
//! core never reads the wall clock.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every line of code under `src/` (comments left out: a doc link is not a dependency), with
/// its file relative to `src/`.
fn code() -> Vec<(String, usize, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let mut lines = Vec::new();
    for file in files {
        let name = file.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
        for (n, line) in std::fs::read_to_string(&file).unwrap().lines().enumerate() {
            if !line.trim_start().starts_with("//") {
                lines.push((name.clone(), n + 1, line.to_string()));
            }
        }
    }
    lines
}

/// Lines that use one of `words` (as a path segment) outside the files `allowed` admits.
fn offenders(words: &[&str], allowed: impl Fn(&str) -> bool) -> Vec<String> {
    code()
        .into_iter()
        .filter(|(file, _, line)| {
            !allowed(file)
                && words.iter().any(|w| {
                    line.match_indices(w).any(|(i, _)| {
                        let before = line[..i].chars().next_back();
                        let after = line[i + w.len()..].chars().next();
                        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
                    })
                })
        })
        .map(|(file, n, line)| format!("src/{file}:{n}: {}", line.trim()))
        .collect()
}

#[test]
fn each_library_is_imported_by_its_own_layer_only() {
    // (what, the words that use it, where it may be used)
    type Rule = (&'static str, &'static [&'static str], fn(&str) -> bool);
    let rules: [Rule; 7] = [
        ("mlua", &["mlua"], |f| f.starts_with("script/")),
        ("axum/hyper/tower", &["axum", "hyper", "tower", "tower_http"], |f| f.starts_with("http/")),
        ("rusqlite", &["rusqlite"], |f| f.starts_with("store/")),
        ("lettre", &["lettre"], |f| f.starts_with("delivery/")),
        ("minijinja", &["minijinja"], |f| f == "domain/template.rs"),
        ("reqwest", &["reqwest"], |f| f.starts_with("delivery/") || f == "webhook.rs" || f == "outbound.rs"),
        // The library emits events; only the binary decides where they go.
        ("tracing_subscriber", &["tracing_subscriber"], |f| f == "main.rs"),
    ];
    let mut wrong = Vec::new();
    for (what, words, allowed) in rules {
        wrong.extend(offenders(words, allowed).into_iter().map(|o| format!("{what}: {o}")));
    }
    assert!(wrong.is_empty(), "imports outside their layer:\n{}", wrong.join("\n"));
}

/// The library emits `tracing` events and never prints: where its lines go is the embedder's
/// choice (`rota serve` writes them to stderr). `rota test`'s own output is the one exception.
#[test]
fn only_the_binary_prints() {
    let wrong =
        offenders(&["println!", "eprintln!", "print!", "eprint!"], |f| f == "main.rs" || f == "script/testkit.rs");
    assert!(wrong.is_empty(), "prints outside the binary:\n{}", wrong.join("\n"));
}

#[test]
fn the_domain_has_no_arrow_back() {
    let layers = [
        "crate::engine",
        "crate::script",
        "crate::store",
        "crate::runtime",
        "crate::http",
        "crate::delivery",
        "crate::server",
        "crate::webhook",
        "crate::outbox",
        "crate::testing",
        "crate::views",
        "crate::input",
        "tokio",
    ];
    let wrong = offenders(&layers, |f| !f.starts_with("domain/"));
    assert!(wrong.is_empty(), "the domain depends on a layer above it:\n{}", wrong.join("\n"));
}

#[test]
fn the_core_never_reads_the_wall_clock() {
    let wrong = offenders(&["Utc::now", "SystemTime::now", "Local::now"], |f| f == "domain/clock.rs" || f == "main.rs");
    assert!(wrong.is_empty(), "wall clock read outside the clock:\n{}", wrong.join("\n"));
    // Stopwatches that never feed a decision: the CPU budget, the latency measurement, the
    // pause a snapshot took, how long `rota test` cases took, the command line's timings, and
    // how long a PostgreSQL lease has gone unrenewed.
    let stopwatches = [
        "store/postgres.rs",
        "script/sandbox.rs",
        "engine/decisions.rs",
        "runtime/snapshots.rs",
        "testing/mod.rs",
        "http/log.rs",
        "main.rs",
    ];
    let wrong = offenders(&["Instant::now"], |f| stopwatches.contains(&f));
    assert!(wrong.is_empty(), "a stopwatch outside the known ones:\n{}", wrong.join("\n"));
}
