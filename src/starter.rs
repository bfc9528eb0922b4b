//! `rota init`: a small working scripts folder (rules and their test) to start from.

use std::path::{Path, PathBuf};

use crate::error::WriteError;

const FILES: &[(&str, &str)] = &[
    ("rules.lua", include_str!("../starter/rules.lua")),
    ("rules_test.lua", include_str!("../starter/rules_test.lua")),
];

/// Writes the starter rules into `dir` (made if missing) and returns the files written.
/// A folder that already holds Lua files is left alone: nothing of the user's is overwritten.
pub fn write(dir: &Path) -> Result<Vec<PathBuf>, WriteError> {
    if let Ok(entries) = std::fs::read_dir(dir) {
        let lua: Vec<String> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "lua"))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        if !lua.is_empty() {
            let message =
                format!("already has rules ({}); rota init only writes into an empty or new folder", lua.join(", "));
            return Err(WriteError::Refused { path: dir.into(), message });
        }
    }
    std::fs::create_dir_all(dir).map_err(|source| WriteError::Io { path: dir.into(), source })?;
    FILES
        .iter()
        .map(|(name, text)| {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|source| WriteError::Io { path: path.clone(), source })?;
            Ok(path)
        })
        .collect()
}
