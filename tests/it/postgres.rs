//! rota on PostgreSQL (`db = "postgres://…"`), against a real server the tests start
//! themselves (`common::postgres`): the crash test, the store's refusals and the notification
//! log's retention, each as on SQLite; and a second server on the same database refused.

use crate::common;
use crate::crash;

use std::process::Command;

use common::postgres::Cluster;
use common::{fixture, spawn, Scratch};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_inputs_and_timers_survive_sigkill_on_postgresql() {
    let cluster = Cluster::get();
    crash::survives_sigkill(&cluster.database()).await;
}

#[test]
fn a_notification_id_the_database_already_has_fails_the_step_loudly() {
    let cluster = Cluster::get();
    crash::collision_fails_the_step(&mut rota::store::PostgresStore::open(&cluster.database()).unwrap());
}

#[test]
fn the_notification_log_on_postgresql_forgets_what_is_done_after_its_window() {
    let cluster = Cluster::get();
    crash::log_forgets_what_is_done(&mut rota::store::PostgresStore::open(&cluster.database()).unwrap());
}

/// One writer per database, as one per SQLite file: a second `rota serve` is refused, naming
/// the database without its password.
#[test]
fn a_second_server_on_the_same_postgresql_database_refuses_to_start() {
    let cluster = Cluster::get();
    let db = cluster.database().replace("rota@", "rota:secret-password@");
    let dir = Scratch::new(&[]);
    let config = dir.0.join("rota.toml");
    std::fs::write(
        &config,
        format!("listen = \"127.0.0.1:0\"\ndb = {db:?}\nscripts = {:?}\n", fixture("units").display().to_string()),
    )
    .unwrap();
    let mut first = spawn(&config);
    let second = Command::new(env!("CARGO_BIN_EXE_rota")).args(["serve", "--config"]).arg(&config).output().unwrap();
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("is in use by another rota process"), "{stderr}");
    assert!(stderr.contains("rota:***@127.0.0.1") && !stderr.contains("secret-password"), "{stderr}");
}
