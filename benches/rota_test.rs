//! `rota test` on a hundred typical tests: the example rules of `scripts/` with their own test
//! files copied until there are 100 cases (each case a fresh engine with those rules, driven
//! on virtual time: agents signed in, calls arriving, offers timing out, standby messages
//! rendered and checked). Reports the wall time of the whole run and per case.
//!
//! `cargo bench --bench rota_test` (three runs).

use std::path::Path;
use std::time::Instant;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("rota-bench-tests-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut tests = Vec::new();
    for entry in std::fs::read_dir(root.join("scripts")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        if name.ends_with("_test.lua") {
            tests.push((name, text));
        } else {
            std::fs::write(dir.join(&name), text).unwrap();
        }
    }
    // Copies of the test files until there are at least 100 cases.
    let per_round: usize = tests.iter().map(|(_, t)| t.matches("\n    it(").count()).sum();
    let rounds = 100usize.div_ceil(per_round);
    for round in 0..rounds {
        for (name, text) in &tests {
            std::fs::write(dir.join(format!("r{round:02}_{name}")), text).unwrap();
        }
    }
    println!("machine: {} cores", std::thread::available_parallelism().map_or(0, |n| n.get()));
    for run in 1..=3 {
        let started = Instant::now();
        let results = rota::testing::run(&dir, &rota::testing::Options::default()).unwrap();
        let took = started.elapsed();
        let (passed, failed) = rota::testing::report::totals(&results);
        assert_eq!(failed, 0, "the example tests must pass");
        println!(
            "run {run}: {passed} cases in {} files: {:.0} ms ({:.2} ms per case)",
            results.len(),
            took.as_secs_f64() * 1000.0,
            took.as_secs_f64() * 1000.0 / passed as f64
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
