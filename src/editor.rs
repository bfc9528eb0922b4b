//! Editor support: `rota types` writes luau-lsp's view of the Lua API into a project — the
//! definition file (`stdlib/rota.d.luau`), the stdlib modules a script may `require` (typed
//! Luau, so completion reaches into them), and settings that tie them together.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::error::WriteError;
use crate::script::{stdlib_modules, Sources, DEFINITIONS};

/// Where the files go inside the project.
const TYPES_DIR: &str = ".rota";

/// Writes the definitions, the stdlib modules, `.luaurc` and `.vscode/settings.json` into `dir`
/// (a scripts folder); returns the files written. Existing editor settings are merged into,
/// not replaced: only rota's keys are set.
pub fn write_types(dir: &Path) -> Result<Vec<PathBuf>, WriteError> {
    write_types_with(dir, &crate::script::HostFunctions::default())
}

/// [`write_types`] for rules of an embedding program that adds its own Lua functions: their
/// declarations go into the definitions too.
pub fn write_types_with(dir: &Path, functions: &crate::script::HostFunctions) -> Result<Vec<PathBuf>, WriteError> {
    let io = |path: &Path, source: std::io::Error| WriteError::Io { path: path.into(), source };
    let mut written = Vec::new();
    let mut write = |rel: &str, text: &str| -> Result<(), WriteError> {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("a file in a folder")).map_err(|e| io(&path, e))?;
        std::fs::write(&path, text).map_err(|e| io(&path, e))?;
        written.push(path);
        Ok(())
    };
    write(&format!("{TYPES_DIR}/rota.d.luau"), &format!("{DEFINITIONS}{}", functions.definitions()))?;
    // `require("rota.test")` and the folder's own `require("lib.util")` resolve through aliases.
    let mut aliases = serde_json::Map::new();
    for (name, path, code) in stdlib_modules() {
        write(&format!("{TYPES_DIR}/{path}"), code)?;
        aliases.insert(name, json!(format!("{TYPES_DIR}/{path}")));
    }
    if let Ok(sources) = Sources::read(dir) {
        for (name, rel, _) in &sources.modules {
            aliases.insert(name.clone(), json!(rel));
        }
    }

    let settings_path = dir.join(".vscode/settings.json");
    let mut settings = match std::fs::read_to_string(&settings_path) {
        Ok(text) => serde_json::from_str::<serde_json::Value>(&text).map_err(|e| WriteError::Refused {
            path: settings_path.clone(),
            message: format!("not JSON ({e}); fix or remove it"),
        })?,
        Err(_) => json!({}),
    };
    let not_object = || WriteError::Refused { path: settings_path.clone(), message: "not a JSON object".into() };
    let object = settings.as_object_mut().ok_or_else(not_object)?;
    object.insert("luau-lsp.platform.type".into(), json!("standard"));
    object.insert("luau-lsp.types.definitionFiles".into(), json!([format!("{TYPES_DIR}/rota.d.luau")]));
    object.insert("luau-lsp.require.mode".into(), json!("relativeToFile"));
    object.insert("luau-lsp.require.fileAliases".into(), serde_json::Value::Object(aliases));
    object.insert("files.associations".into(), json!({ "*.lua": "luau" }));
    write(".vscode/settings.json", &format!("{}\n", serde_json::to_string_pretty(&settings).expect("JSON")))?;

    let luaurc = json!({
        "languageMode": "nonstrict",
        "lint": { "*": true, "LocalUnused": false },
        "lintErrors": false,
    });
    write(".luaurc", &format!("{}\n", serde_json::to_string_pretty(&luaurc).expect("JSON")))?;
    Ok(written)
}
