//! Points a definition's diagnostic at the line of the field or value it is about.
//!
//! Lua tables keep no line numbers, so a problem found in `queues.define { … }` is first known
//! at the line of the call. The source text knows better: within the definition's braces, the
//! line that holds the name the message quotes (`unknown agent \`bobb\`` → the line with
//! `"bobb"`; `field \`weight\`` → the line with `weight =`). Names are tried from the last one
//! the message quotes to the first, leaving out the definition's own id and a "did you mean"
//! hint; when none is found the call's line stays.

use crate::error::Diagnostic;

/// Moves each diagnostic to the line its quoted names point at, if that is inside the same
/// definition. `sources` are the rule files as (path, text).
pub(super) fn pinpoint(diagnostics: &mut [Diagnostic], sources: &[(String, String)]) {
    for d in diagnostics {
        let Some(line) = d.line else { continue };
        let Some((_, text)) = sources.iter().find(|(f, _)| *f == d.file) else { continue };
        let lines: Vec<&str> = text.lines().collect();
        let start = line as usize - 1;
        if start >= lines.len() {
            continue;
        }
        let end = definition_end(&lines, start);
        let span = &lines[start..=end];
        let own_id = span.iter().find_map(|l| quoted_after(l, "id"));
        let message = d.message.split(" (did you mean").next().unwrap_or(&d.message);
        let names: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
        let found = names
            .iter()
            .rev()
            .filter(|n| !n.is_empty() && Some(**n) != own_id.as_deref())
            .find_map(|n| span.iter().position(|l| mentions(l, n)));
        if let Some(offset) = found {
            d.line = Some(line + offset as u32);
        }
    }
}

/// The index of the line where the table opened on line `start` closes (or `start` itself when
/// the line opens none). Strings and comments are skipped well enough for definitions.
fn definition_end(lines: &[&str], start: usize) -> usize {
    let mut depth = 0i32;
    let mut opened = false;
    for (i, line) in lines.iter().enumerate().skip(start) {
        let mut quote: Option<char> = None;
        let mut prev = ' ';
        for c in line.chars() {
            match quote {
                Some(q) if c == q && prev != '\\' => quote = None,
                Some(_) => {}
                None if c == '-' && prev == '-' => break,
                None if c == '"' || c == '\'' => quote = Some(c),
                None if c == '{' => {
                    depth += 1;
                    opened = true;
                }
                None if c == '}' => depth -= 1,
                None => {}
            }
            prev = c;
        }
        if !opened || depth <= 0 {
            return i;
        }
    }
    lines.len() - 1
}

/// Whether a line holds `name` as a quoted string or as a field key (`name =`).
fn mentions(line: &str, name: &str) -> bool {
    let code = line.split("--").next().unwrap_or(line);
    if code.contains(&format!("\"{name}\"")) || code.contains(&format!("'{name}'")) {
        return true;
    }
    code.match_indices(name).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + name.len()..].trim_start();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_') && after.starts_with('=') && !after.starts_with("==")
    })
}

/// The string a line gives `key` (`id = "q2"` → `q2`).
fn quoted_after(line: &str, key: &str) -> Option<String> {
    let (at, _) = line.match_indices(key).find(|(at, _)| {
        let before = line[..*at].chars().next_back();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_') && line[at + key.len()..].trim_start().starts_with('=')
    })?;
    let rest = line[at + key.len()..].trim_start().strip_prefix('=')?.trim_start();
    let q = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    rest[1..].split(q).next().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = r#"teams.define { id = "desk" }
agents.define { id = "ann", weight = "heavy" } -- one line
queues.define {
    id = "q",
    agents = { "ann", "bobb" },
    policy = "round_robn",
    options = { timeout = "x" }, -- a "comment" { with braces
    on_max_wait = "qq",
}
queues.define { id = "q2", policy = "x" }
"#;

    fn at(line: u32, message: &str) -> u32 {
        let mut d = vec![Diagnostic::new("rules.lua", Some(line), message)];
        pinpoint(&mut d, &[("rules.lua".into(), RULES.into())]);
        d[0].line.unwrap()
    }

    #[test]
    fn a_problem_points_at_the_line_of_what_it_names() {
        let cases = [
            (3, "queue `q`: unknown agent `bobb` (did you mean `bob`?)", 5),
            (3, "queue `q`: unknown policy `round_robn` (did you mean `round_robin`?)", 6),
            (3, "queue `q`: option `timeout`: not a duration", 7),
            (3, "queue `q`: on_max_wait names unknown queue `qq` (did you mean `q`?)", 8),
            (3, "queues.define: field `on_max_wait` must be a string, got table", 8),
            // Only its own id: the definition's line stays.
            (3, "queue `q` is already defined", 3),
            // A one-line definition: the same line.
            (2, "agents.define: field `weight` must be a number, got string", 2),
            // Nothing named in the next definition is borrowed.
            (10, "queue `q2`: unknown agent `bobb`", 10),
        ];
        for (line, message, expected) in cases {
            assert_eq!(at(line, message), expected, "{message}");
        }
    }
}
