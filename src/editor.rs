//! Editor support: `rota types` writes luau-lsp's view of the Lua API into a project — the
//! definition file (`stdlib/rota.d.luau`), the stdlib modules a script may `require` (typed
//! Luau, so completion reaches into them), and settings that tie them together.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::script::{stdlib_modules, Sources, DEFINITIONS};

/// Where the files go inside the project.
const TYPES_DIR: &str = ".rota";

/// Writes the definitions, the stdlib modules, `.luaurc` and `.vscode/settings.json` into `dir`
/// (a scripts folder); returns the files written. Existing editor settings are merged into,
/// not replaced: only rota's keys are set.
pub fn write_types(dir: &Path) -> Result<Vec<PathBuf>, String> {
    write_types_with(dir, &crate::script::HostFunctions::default())
}

/// [`write_types`] for rules of an embedding program that adds its own Lua functions: their
/// declarations go into the definitions too.
pub fn write_types_with(dir: &Path, functions: &crate::script::HostFunctions) -> Result<Vec<PathBuf>, String> {
    let io = |path: &Path, e: std::io::Error| format!("{}: {e}", path.display());
    let mut written = Vec::new();
    let mut write = |rel: &str, text: &str| -> Result<(), String> {
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
        Ok(text) => serde_json::from_str::<serde_json::Value>(&text)
            .map_err(|e| format!("{}: not JSON ({e}); fix or remove it", settings_path.display()))?,
        Err(_) => json!({}),
    };
    let object = settings.as_object_mut().ok_or_else(|| format!("{}: not a JSON object", settings_path.display()))?;
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
