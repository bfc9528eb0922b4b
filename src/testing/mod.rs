//! `rota test`: finds the `*_test.lua` files of a folder, runs each case in a fresh engine
//! loaded with the rules beside it, on virtual time, and reports (see [`report`]).
//!
//! A test file's rules are the scripts folder it sits in. The folder's rules are loaded once to
//! find their problems (then every case of the folder fails with them); each case still gets
//! an engine of its own. Wall-clock time is read here only to report how long cases took.

pub mod report;
mod world;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::engine::EngineConfig;
use crate::script::testkit::{Failure, FailureKind, Suite};
use crate::script::{Limits, Sources};

pub use world::{EngineWorld, START};

/// How a run is made.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// Only cases whose full name (`describe > it`) contains this.
    pub filter: Option<String>,
    /// CPU time one case may use, hooks included (the rules' own calls have their limits).
    pub cpu_per_case: Duration,
    pub limits: Limits,
    /// Lua functions an embedding program adds, for rules that call them.
    pub functions: crate::script::HostFunctions,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            filter: None,
            cpu_per_case: Duration::from_secs(5),
            limits: Limits::default(),
            functions: Default::default(),
        }
    }
}

impl Options {
    /// These options with the embedding program's Lua functions, for rules that call them.
    pub fn functions(self, functions: crate::script::HostFunctions) -> Self {
        Options { functions, ..self }
    }
}

/// The results of one test file.
#[derive(Debug)]
pub struct FileResult {
    /// As given to the user: relative to the folder `rota test` was run on.
    pub file: String,
    /// Why the file's cases could not run at all (its rules or the file itself do not load).
    pub error: Option<String>,
    pub cases: Vec<CaseResult>,
}

#[derive(Debug)]
pub struct CaseResult {
    pub name: String,
    pub line: Option<u32>,
    pub took: Duration,
    pub failure: Option<Failure>,
    /// What the case printed.
    pub output: String,
}

impl FileResult {
    pub fn failed(&self) -> usize {
        self.error.is_some() as usize + self.cases.iter().filter(|c| c.failure.is_some()).count()
    }
}

/// The `*_test.lua` files under `dir` (hidden folders aside), in name order.
pub fn discover(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    crate::script::files_under(dir, &mut files)?;
    files.retain(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with("_test.lua")));
    Ok(files)
}

/// Runs every test file under `dir`.
pub fn run(dir: &Path, options: &Options) -> std::io::Result<Vec<FileResult>> {
    // Every case loads the rules afresh: compiling them to native code would cost more than it
    // saves in a case's few decisions (and the behaviour is the same).
    let options =
        &Options { limits: crate::script::Limits { native_code: false, ..options.limits.clone() }, ..options.clone() };
    let files = discover(dir)?;
    let mut results = Vec::new();
    // Test files in one folder share its rules: read and checked once.
    let mut loaded: BTreeMap<PathBuf, Result<Sources, String>> = BTreeMap::new();
    for file in files {
        let folder = file.parent().unwrap_or(Path::new(".")).to_path_buf();
        let sources = loaded.entry(folder.clone()).or_insert_with(|| {
            Sources::read(&folder).map_err(|e| e.to_string()).and_then(|s| {
                let host = crate::script::Host { functions: options.functions.clone(), ..Default::default() };
                crate::script::load_sources(&s, &options.limits, &host, 1).map(|_| s).map_err(|e| e.to_string())
            })
        });
        let shown = file.strip_prefix(dir).unwrap_or(&file).display().to_string();
        let result = run_file(&file, &folder, shown, sources, options);
        // A file whose cases the filter left out has nothing to say.
        if result.cases.is_empty() && result.error.is_none() && options.filter.is_some() {
            continue;
        }
        results.push(result);
    }
    Ok(results)
}

fn run_file(
    file: &Path,
    folder: &Path,
    shown: String,
    sources: &Result<Sources, String>,
    options: &Options,
) -> FileResult {
    let fail = |error: String| FileResult { file: shown.clone(), error: Some(error), cases: Vec::new() };
    let sources = match sources {
        Ok(s) => s,
        Err(e) => return fail(format!("the rules in {} do not load:\n{e}", folder.display())),
    };
    let code = match std::fs::read_to_string(file) {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot read: {e}")),
    };
    let rel = file.strip_prefix(folder).unwrap_or(file).display().to_string();
    let suite = match Suite::load(&rel, &code, &sources.modules, &options.functions, &options.limits) {
        Ok(s) => s,
        Err(d) => return fail(d.to_string()),
    };
    let mut cases = Vec::new();
    for (i, case) in suite.cases.iter().enumerate() {
        if options.filter.as_ref().is_some_and(|f| !case.name.contains(f.as_str())) {
            continue;
        }
        let started = Instant::now();
        // A test reads every skipped candidate of a decision (`test.expect_skipped`), however
        // many a queue has.
        let config = EngineConfig {
            limits: options.limits.clone(),
            functions: options.functions.clone(),
            trace_skips: usize::MAX,
            ..EngineConfig::new(folder)
        };
        let (failure, output) = match EngineWorld::new(config, sources.clone()) {
            Ok(world) => {
                let ran = suite.run(i, Box::new(world), options.cpu_per_case);
                (ran.result.err(), ran.output)
            }
            Err(e) => {
                let failure = Failure { message: e.to_string(), file: None, line: None, kind: FailureKind::Error };
                (Some(failure), String::new())
            }
        };
        cases.push(CaseResult { name: case.name.clone(), line: case.line, took: started.elapsed(), failure, output });
    }
    FileResult { file: shown, error: None, cases }
}
