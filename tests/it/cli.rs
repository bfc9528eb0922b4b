//! The small commands, as a user types them: each case is the arguments, whether it succeeds,
//! and a piece of what it must print (stdout, or stderr for a failure).

use std::path::Path;

const CASES: &[(&[&str], bool, &str)] = &[
    // The scripts folder comes the same way as for `check` and `test`: a plain argument.
    (&["schedule", "who", "duty", "tests/fixtures/calendar", "--at", "2026-11-25T10:00:00Z"], true, "dan (layer 1;"),
    // A local time is the schedule's own (CET here): 11:00 CET is 10:00 UTC.
    (&["schedule", "who", "duty", "tests/fixtures/calendar", "--at", "2026-11-25 11:00"], true, "dan (layer 1;"),
    (
        &["schedule", "who", "duty", "tests/fixtures/calendar", "--at", "noon"],
        false,
        "`noon` is not a time; write it like",
    ),
    // Every parameter of the sample is filled: no "waited 1m 35s: ." with an empty reason.
    (&["preview", "missed_call", "examples/standby"], true, "waited 1m 35s:\nPrimary Agent did not answer in time."),
    (&["preview", "call_taken", "examples/standby"], false, "preview it with --clearing"),
    (&["preview", "call_taken", "examples/standby", "--clearing"], true, "Primary Agent"),
    (&["preview", "missed_call", "examples/standby", "--clearing"], false, "is no standby rule's clearing message"),
    (&["preview", "no_such", "examples/standby"], false, "no template `no_such`"),
    // The older spelling still works.
    (&["preview", "missed_call", "--scripts", "examples/standby"], true, "Subject: "),
];

#[test]
fn small_commands_take_the_folder_and_times_as_people_type_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut failures = Vec::new();
    for (args, ok, expected) in CASES {
        let out =
            std::process::Command::new(env!("CARGO_BIN_EXE_rota")).args(*args).current_dir(root).output().unwrap();
        let text = String::from_utf8_lossy(if *ok { &out.stdout } else { &out.stderr }).to_string();
        if out.status.success() != *ok || !text.contains(expected) {
            failures.push(format!(
                "rota {}: exit {:?}, expected {} with {expected:?}; printed:\n{}{}",
                args.join(" "),
                out.status.code(),
                if *ok { "success" } else { "failure" },
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// In an empty folder: `rota serve` says there are no rules (and makes no database file),
/// `rota init` writes a working folder whose test passes and which `rota serve` serves, and a
/// second `rota init` overwrites nothing.
#[test]
fn the_first_commands_in_an_empty_folder() {
    let dir = std::env::temp_dir().join(format!("rota-first-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let rota = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rota")).args(args).current_dir(&dir).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    };
    let (ok, text) = rota(&["serve", "--listen", "127.0.0.1:0"]);
    assert!(!ok && text.contains("no rules to serve in `scripts`") && text.contains("rota init"), "{text}");
    assert!(!dir.join("rota.db").exists(), "a database file was made for a server that cannot start");

    let (ok, text) = rota(&["init"]);
    assert!(ok && text.contains("wrote scripts/rules.lua") && text.contains("`rota serve`"), "{text}");
    let (ok, text) = rota(&["test"]);
    assert!(ok && text.contains("2 passed, 0 failed"), "{text}");
    let (ok, text) = rota(&["check"]);
    assert!(ok, "{text}");
    std::fs::write(dir.join("scripts/rules.lua"), "-- mine\n").unwrap();
    let (ok, text) = rota(&["init"]);
    assert!(!ok && text.contains("already has rules"), "{text}");
    assert_eq!(std::fs::read_to_string(dir.join("scripts/rules.lua")).unwrap(), "-- mine\n", "init overwrote a file");

    std::fs::remove_dir_all(dir.join("scripts")).unwrap();
    assert!(rota(&["init"]).0);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rota"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let listening = std::io::BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("rota listening on "));
    let _ = child.kill();
    let _ = child.wait();
    assert!(listening.is_some(), "rota serve did not start on the folder rota init wrote");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `rota store info` reads a store without taking it over: beside a process that holds it
/// (the lock `rota serve` takes), it says the format, the journal and the tables.
#[test]
fn store_info_reads_a_store_that_is_in_use() {
    let dir = crate::common::Scratch::new(&[]);
    let db = dir.0.join("rota.db");
    crate::common::format0_store(&db);
    let info = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rota"))
            .args(["store", "info", "--db", db.to_str().unwrap()])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, text, err) = info();
    assert!(ok && text.contains("format: 0 (older") && text.contains("journal: 3 records"), "{text}{err}");
    // Opened (and migrated) by a store that keeps it locked, as a running server does.
    let _held = rota::store::SqliteStore::open(&db).unwrap();
    let (ok, text, err) = info();
    assert!(ok && text.contains("format: 2 (this rota's)") && text.contains("notifications: 0 rows"), "{text}{err}");
}
