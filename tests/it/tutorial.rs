//! The tutorial, followed step by step as a reader would: each file written when the page says
//! to create it, each command run at the point where it appears (a `rota check` in step 2 runs
//! against what steps 1 and 2 created, not the finished folder), and shown output compared.

use crate::common;

use common::walkthrough::{self, Reader, Step};
use common::Scratch;

#[test]
fn the_tutorial_works_step_by_step_as_written() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/tutorial.md")).unwrap();
    let home = Scratch::new(&[]);
    let mut reader = Reader::new(&home.0);
    let mut ran = 0;
    for step in walkthrough::steps(&page, true) {
        match step {
            Step::Write { file, code } => std::fs::write(reader.cwd.join(&file), code).unwrap(),
            Step::Run { line, shown } => {
                for r in reader.run(&line) {
                    ran += 1;
                    assert_eq!(r.code, 0, "`{line}` failed at this step:\n{}{}", r.stdout, r.stderr);
                    if let Some(shown) = &shown {
                        assert_eq!(
                            walkthrough::without_timings(&r.stdout),
                            walkthrough::without_timings(shown),
                            "`{line}` prints something else than the tutorial shows"
                        );
                    }
                }
            }
        }
    }
    assert!(ran >= 5, "only {ran} rota commands found: the walkthrough lost track of the page");

    // "Change `pass_after` to `"45s"` and run it again: the second case fails with `…`".
    let (_, after) = page.split_once("Change `pass_after` to `\"45s\"`").expect("the tutorial's change-it step");
    let quoted = after.split("fails with\n`").nth(1).or_else(|| after.split("fails with `").nth(1)).unwrap();
    let failure = quoted.split('`').next().unwrap().replace('\n', " ");
    let queues = reader.cwd.join("queues.lua");
    let text = std::fs::read_to_string(&queues).unwrap().replace("pass_after = \"30s\"", "pass_after = \"45s\"");
    std::fs::write(&queues, text).unwrap();
    let r = reader.run("rota test .").remove(0);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains(&failure), "the tutorial says it fails with `{failure}`:\n{}", r.stdout);
}
