//! Follows a Markdown walkthrough (the tutorial, the README) the way a reader would: files it
//! says to create are written, commands it shows are run, and output it shows is compared.
//!
//! What it understands, so a page cannot contain a step nobody checks:
//! - "Create `FILE`" or "Replace `FILE` with" in prose, then the next ```lua block: the file.
//! - ```sh blocks: one command per line (a line ending in `\` goes on; `&&` chains them; `#`
//!   starts a comment; `NAME=value;`
//!   assignments set variables used as `$NAME`). Commands are `mkdir`, `cd` and `rota …`
//!   (with `> FILE`);
//!   anything else fails the test, so a page never shows a command this does not run.
//! - A plain ``` block right after a ```sh block: what the last command prints, compared line by
//!   line with timings (`3.1 ms`, `0.01 s`) left out.
//! - With `inline`, `rota …` in inline code in prose is run as well (the tutorial says "check
//!   it: `rota check .`"; the README's inline code names commands with placeholders).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug)]
pub enum Step {
    Write { file: String, code: String },
    Run { line: String, shown: Option<String> },
}

/// The steps of a page, in order.
pub fn steps(page: &str, inline: bool) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut pending_file: Option<String> = None;
    let mut block: Option<(String, String)> = None;
    let mut last_was_sh = false;
    for line in page.lines() {
        if let Some((_, code)) = &mut block {
            if line.trim_end() == "```" {
                let (lang, code) = block.take().unwrap();
                match lang.as_str() {
                    "lua" | "lua test" => {
                        if let Some(file) = pending_file.take() {
                            steps.push(Step::Write { file, code });
                        }
                        last_was_sh = false;
                    }
                    "sh" => {
                        let joined = code.replace("\\\n", " ");
                        for command in joined.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
                            steps.push(Step::Run { line: command.to_string(), shown: None });
                        }
                        last_was_sh = true;
                        continue;
                    }
                    "" if last_was_sh => {
                        if let Some(Step::Run { shown, .. }) = steps.last_mut() {
                            *shown = Some(code);
                        }
                        last_was_sh = false;
                    }
                    _ => last_was_sh = false,
                }
            } else {
                code.push_str(line);
                code.push('\n');
            }
            continue;
        }
        if let Some(lang) = line.trim_end().strip_prefix("```") {
            block = Some((lang.trim().to_string(), String::new()));
            continue;
        }
        if !line.trim().is_empty() {
            last_was_sh = false;
        }
        for (i, span) in line.split('`').enumerate() {
            if i % 2 == 0 {
                continue;
            }
            if inline && span.starts_with("rota ") {
                steps.push(Step::Run { line: span.to_string(), shown: None });
            }
        }
        for marker in ["Create `", "Replace `"] {
            if let Some(rest) = line.split(marker).nth(1) {
                pending_file = rest.split('`').next().map(str::to_string);
            }
        }
    }
    steps
}

/// A reader at a shell: a working folder and variables.
pub struct Reader {
    pub cwd: PathBuf,
    pub vars: BTreeMap<String, String>,
}

/// What running one `rota` command gave.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Reader {
    pub fn new(cwd: &Path) -> Reader {
        Reader { cwd: cwd.to_path_buf(), vars: BTreeMap::new() }
    }

    /// Runs one line; the `rota` commands' results, in order.
    pub fn run(&mut self, line: &str) -> Vec<Ran> {
        let mut out = Vec::new();
        for part in line.split("&&") {
            let words = self.words(part);
            out.extend(self.command(&words, line));
        }
        out
    }

    /// One command's words, `$NAME`s expanded; leading `NAME=value` assignments are taken.
    pub fn words(&mut self, part: &str) -> Vec<String> {
        let mut words = split(part, &self.vars);
        while let Some(first) = words.first() {
            let Some((name, value)) = first.split_once('=').filter(|(n, _)| is_name(n)) else { break };
            self.vars.insert(name.to_string(), value.trim_end_matches(';').to_string());
            words.remove(0);
        }
        words
    }

    /// Runs `mkdir`, `cd` or `rota …` (of the page `line`); anything else fails the test.
    pub fn command(&mut self, words: &[String], line: &str) -> Option<Ran> {
        let program = words.first()?;
        match program.as_str() {
            "mkdir" => {
                for dir in &words[1..] {
                    std::fs::create_dir_all(self.cwd.join(dir)).unwrap();
                }
                None
            }
            "cd" => {
                self.cwd = self.cwd.join(&words[1]);
                None
            }
            "rota" => {
                // `rota … > FILE` writes what it prints to FILE.
                let redirect = words.iter().position(|w| w == ">");
                let args = &words[1..redirect.unwrap_or(words.len())];
                let o = Command::new(env!("CARGO_BIN_EXE_rota")).args(args).current_dir(&self.cwd).output();
                let o = o.unwrap_or_else(|e| panic!("`{line}` did not start: {e}"));
                if let Some(file) = redirect.and_then(|i| words.get(i + 1)) {
                    std::fs::write(self.cwd.join(file), &o.stdout).unwrap();
                }
                Some(Ran {
                    code: o.status.code().unwrap_or(-1),
                    stdout: String::from_utf8_lossy(&o.stdout).into(),
                    stderr: String::from_utf8_lossy(&o.stderr).into(),
                })
            }
            other => panic!("the page shows `{line}`, and `{other}` is not a command this walkthrough runs"),
        }
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Shell words: single quotes literal, double quotes expand `$NAME`, bare words too.
pub fn split(line: &str, vars: &BTreeMap<String, String>) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars().peekable();
    let expand = |chars: &mut std::iter::Peekable<std::str::Chars>, into: &mut String| {
        let mut name = String::new();
        while let Some(&c) = chars.peek().filter(|c| c.is_ascii_alphanumeric() || **c == '_') {
            name.push(c);
            chars.next();
        }
        into.push_str(vars.get(&name).map(String::as_str).unwrap_or(""));
    };
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    w.push(c);
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '$' => expand(&mut chars, w),
                        '\\' => w.extend(chars.next()),
                        c => w.push(c),
                    }
                }
            }
            '$' => expand(&mut chars, word.get_or_insert_with(String::new)),
            '#' if word.is_none() => break,
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

/// Output with timings left out: `(3.1 ms)` and `0.01 s` vary from run to run.
pub fn without_timings(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| {
            let words: Vec<&str> = line.split(' ').collect();
            let mut kept = Vec::new();
            for (i, w) in words.iter().enumerate() {
                let next = words.get(i + 1).copied().unwrap_or("");
                let number = !w.is_empty() && w.trim_start_matches('(').chars().all(|c| c.is_ascii_digit() || c == '.');
                if number && (next.starts_with("ms") || next == "s") {
                    kept.push("…");
                } else {
                    kept.push(w);
                }
            }
            kept.join(" ").trim_end().to_string()
        })
        .filter(|l| !l.is_empty())
        .collect()
}
