//! The Lua API reference (`docs/lua/*.md`) runs as tests: in each page, the ```lua blocks are
//! rules (loaded together as one scripts folder) and the ```lua test blocks are `rota test`
//! files run against them. Every namespace has a page, and every page has an example that is
//! run. (The tutorial is followed step by step in `tests/tutorial.rs`.)

use crate::common;

use std::path::{Path, PathBuf};

use common::Scratch;

/// (rules, tests) code blocks of a Markdown page.
fn blocks(text: &str) -> (Vec<String>, Vec<String>) {
    let (mut rules, mut tests) = (Vec::new(), Vec::new());
    let mut current: Option<(bool, String)> = None;
    for line in text.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```lua") => current = Some((false, String::new())),
            (None, "```lua test") => current = Some((true, String::new())),
            (Some(_), "```") => {
                let (is_test, code) = current.take().unwrap();
                if is_test {
                    tests.push(code)
                } else {
                    rules.push(code)
                }
            }
            (Some((_, code)), _) => {
                code.push_str(line);
                code.push('\n');
            }
            (None, _) => {}
        }
    }
    (rules, tests)
}

fn pages() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root.join("lua"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    pages
}

#[test]
fn every_example_in_the_docs_runs() {
    let mut failures = Vec::new();
    for page in pages() {
        let name = page.file_name().unwrap().to_string_lossy().to_string();
        let (rules, tests) = blocks(&std::fs::read_to_string(&page).unwrap());
        if tests.is_empty() {
            failures.push(format!("{name}: no ```lua test example"));
            continue;
        }
        let scratch = Scratch::new(&[("rules.lua", &rules.concat())]);
        for (i, code) in tests.iter().enumerate() {
            scratch.write(&[(&format!("example{i}_test.lua"), code)]);
        }
        if let Err(e) = rota::script::check(&scratch.0, &rota::script::Limits::default()) {
            failures.push(format!("{name}: the rules do not load:\n{e}"));
            continue;
        }
        let results = rota::testing::run(&scratch.0, &rota::testing::Options::default()).unwrap();
        let (passed, failed) = rota::testing::report::totals(&results);
        if failed > 0 || passed == 0 {
            let report =
                rota::testing::report::render(rota::testing::report::Format::Human, &results, Default::default());
            failures.push(format!("{name}:\n{report}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_namespace_has_a_reference_page() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/lua");
    let mut missing = Vec::new();
    for name in rota::script::api_names().unwrap() {
        let namespace = name.split('.').next().unwrap();
        // describe/it/before_each/after_each are documented with rota.test.
        let page = if name.contains('.') { format!("{namespace}.md") } else { "test.md".into() };
        let text = std::fs::read_to_string(docs.join(&page)).unwrap_or_default();
        let entry = name.rsplit('.').next().unwrap();
        if !text.contains(&format!("`{name}"))
            && !text.contains(&format!("{entry}("))
            && !text.contains(&format!("`{entry}`"))
        {
            missing.push(format!("{name} (in docs/lua/{page})"));
        }
    }
    assert!(missing.is_empty(), "undocumented: {missing:?}");
}

/// `docs/api.md` names every route the server has and every status a conversation can be in,
/// so neither can go undocumented.
#[test]
fn every_route_is_on_the_api_page() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md")).unwrap();
    let missing: Vec<String> = rota::http::route_docs()
        .iter()
        .map(|r| format!("`{} {}", r.method.to_uppercase(), r.path))
        .chain(rota::conversation::ConversationStatus::ALL.iter().map(|s| format!("| `{}` |", s.as_str())))
        .filter(|item| !page.contains(item.as_str()))
        .collect();
    assert!(missing.is_empty(), "docs/api.md lacks {missing:?}");
}
