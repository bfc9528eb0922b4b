//! A benchmark's scratch folder in the temporary folder, emptied first.

use std::path::PathBuf;

/// `rota-bench-{name}-{pid}`, empty.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rota-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
