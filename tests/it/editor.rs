//! Editor support: the luau-lsp definition file declares exactly the Lua API the host
//! registers (so an API change without its definition fails here), and `rota types` writes it
//! into a project with settings that find it and the stdlib modules.

use crate::common;

use std::collections::BTreeSet;

use common::{arrive, engine, fixture, Scratch};
use rota::update::Update;

/// The names `stdlib/rota.d.luau` declares: `ns.field` for each field of a `declare ns: { ... }`
/// block (fields are indented four spaces), and `name` for each `declare function name(...)`.
fn declared(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut namespace: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("declare function ") {
            names.insert(rest.split('(').next().unwrap().trim().to_string());
        } else if let Some(rest) = line.strip_prefix("declare ") {
            namespace = Some(rest.split(':').next().unwrap().trim().to_string());
        } else if line.starts_with('}') {
            namespace = None;
        } else if let (Some(ns), Some(field)) = (&namespace, line.strip_prefix("    ")) {
            if let Some((name, _)) = field.split_once(':') {
                if !name.starts_with(' ') && name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    names.insert(format!("{ns}.{name}"));
                }
            }
        }
    }
    names
}

#[test]
fn the_definitions_declare_exactly_the_registered_api() {
    let registered: BTreeSet<String> = rota::script::api_names().unwrap().into_iter().collect();
    let declared = declared(rota::script::DEFINITIONS);
    let missing: Vec<_> = registered.difference(&declared).collect();
    let stale: Vec<_> = declared.difference(&registered).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "stdlib/rota.d.luau is out of step with the registered API:\n  registered but not declared: {missing:?}\n  declared but not registered: {stale:?}"
    );
    // The check itself must see the API: a few names every version has.
    for name in ["agents.define", "policies.offer", "standby.raise", "time.duration", "describe", "it"] {
        assert!(registered.contains(name), "{name} not found in {registered:?}");
    }
}

/// The fields a `type NAME = { ... }` block of the definitions declares.
fn fields_of_type(text: &str, name: &str) -> BTreeSet<String> {
    let start = text.find(&format!("type {name} = {{")).unwrap_or_else(|| panic!("no type {name}"));
    let body = &text[start..];
    let body = &body[..body.find("\n}").unwrap()];
    body.lines()
        .skip(1)
        .filter_map(|l| l.strip_prefix("    ")?.split_once(':'))
        .map(|(name, _)| name.to_string())
        .filter(|name| name.chars().all(|c| c.is_alphanumeric() || c == '_'))
        .collect()
}

/// What a policy finds in its context is what the editor is told it finds.
#[test]
fn the_context_type_declares_every_field_a_policy_gets() {
    let rules = r#"
agents.define { id = "a1" }
policies.register("keys", {
    decide = function(ctx)
        local _ = ctx.candidates -- made when read
        local keys = {}
        for k in ctx do
            -- The skip list's length is the host's bookkeeping, not for policies.
            if k ~= "nskip" then
                table.insert(keys, k)
            end
        end
        table.sort(keys)
        log.info("keys " .. table.concat(keys, " "))
        return policies.wait()
    end,
})
queues.define { id = "q", agents = { "a1" }, policy = "keys" }
"#;
    let dir = Scratch::new(&[("rules.lua", rules)]);
    let (mut engine, _clock) = engine(&dir.0);
    let updates = engine.handle(arrive("c1", "q")).unwrap();
    let seen: BTreeSet<String> = updates
        .iter()
        .find_map(|u| match &u.update {
            Update::Log { message, .. } => message.split("keys ").nth(1).map(str::to_string),
            _ => None,
        })
        .expect("the policy logged its keys")
        .split(' ')
        .map(str::to_string)
        .collect();
    let declared = fields_of_type(rota::script::DEFINITIONS, "Context");
    assert_eq!(seen, declared, "ctx fields (left) against `type Context` in stdlib/rota.d.luau (right)");
    assert!(seen.contains("members") && seen.contains("candidates"), "{seen:?}");
}

#[test]
fn rota_types_writes_definitions_modules_and_settings() {
    let scratch = Scratch::new(&[]);
    for entry in std::fs::read_dir(fixture("custom")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let name = path.file_name().unwrap().to_str().unwrap().to_string();
            scratch.write(&[(&name, &std::fs::read_to_string(&path).unwrap())]);
        }
    }
    scratch.write(&[("lib/util.lua", &std::fs::read_to_string(fixture("custom/lib/util.lua")).unwrap())]);
    scratch.write(&[(".vscode/settings.json", r#"{ "editor.tabSize": 4 }"#)]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rota")).arg("types").arg(&scratch.0).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let read = |rel: &str| std::fs::read_to_string(scratch.0.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert_eq!(read(".rota/rota.d.luau"), rota::script::DEFINITIONS);
    assert!(read(".rota/rota/test.lua").contains("function test.expect_offer("));
    let settings: serde_json::Value = serde_json::from_str(&read(".vscode/settings.json")).unwrap();
    assert_eq!(settings["editor.tabSize"], 4, "the user's own settings are kept");
    assert_eq!(settings["luau-lsp.types.definitionFiles"][0], ".rota/rota.d.luau");
    let aliases = &settings["luau-lsp.require.fileAliases"];
    assert_eq!(aliases["rota.test"], ".rota/rota/test.lua");
    assert_eq!(aliases["rota.candidates"], ".rota/rota/candidates.lua");
    assert_eq!(aliases["lib.util"], "lib/util.lua", "the folder's own modules resolve too");
    let luaurc: serde_json::Value = serde_json::from_str(&read(".luaurc")).unwrap();
    assert_eq!(luaurc["languageMode"], "nonstrict");

    // The files written for the editor are not rules: the folder still loads as before.
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_rota")).arg("check").arg(&scratch.0).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
}
