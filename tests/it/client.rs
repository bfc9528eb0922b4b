//! The OpenAPI document from outside: an independent validator accepts it, an independent
//! generator makes a Python client of it, and that client drives a live `rota serve` (see
//! `tests/client/session.py`, which also checks each reply against its declared schema).

use std::process::Command;

use crate::common::{self, Scratch};

#[test]
fn a_client_generated_from_the_openapi_document_drives_a_live_server() {
    let dir = Scratch::new(&[]);
    let scripts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let config = dir.0.join("rota.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndb = {:?}\nscripts = {:?}\n[[tokens]]\ntoken = \"client-token\"\nunits = [\"*\"]\n",
            dir.0.join("rota.db").display().to_string(),
            scripts.display().to_string()
        ),
    )
    .unwrap();
    let mut server = common::spawn(&config);
    let session = Command::new("python3")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/client/session.py"))
        .args([&server.base, "client-token"])
        .arg(&dir.0)
        .output()
        .expect("python3 runs");
    let _ = server.child.kill();
    let _ = server.child.wait();
    let out = String::from_utf8_lossy(&session.stdout);
    let err = String::from_utf8_lossy(&session.stderr);
    assert!(session.status.success(), "the generated client's session failed:\n{out}\n{err}");
    assert!(out.contains("replies checked against their schemas"), "{out}");
}
