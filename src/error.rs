//! Errors at the library boundary: script diagnostics with file:line, and rejected inputs.

use std::fmt;

/// One problem found in a scripts folder, pointing at the line that caused it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Diagnostic {
    /// Path of the script, relative to the scripts folder (or `stdlib/...`).
    pub file: String,
    pub line: Option<u32>,
    pub message: String,
}

impl Diagnostic {
    pub fn new(file: impl Into<String>, line: Option<u32>, message: impl Into<String>) -> Self {
        Diagnostic { file: file.into(), line, message: message.into() }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// A scripts folder that could not be loaded. Nothing of it is used.
#[derive(Clone, Debug, thiserror::Error)]
pub struct LoadError {
    pub diagnostics: Vec<Diagnostic>,
}

impl LoadError {
    /// A reload of several partitions as one that stopped before all of them had answered.
    pub fn aborted() -> Self {
        let why = "the reload was abandoned before every partition had answered; nothing changed";
        LoadError { diagnostics: vec![Diagnostic::new("<reload>", None, why)] }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.diagnostics.len();
        write!(f, "scripts rejected ({n} problem{})", if n == 1 { "" } else { "s" })?;
        for d in &self.diagnostics {
            write!(f, "\n{d}")?;
        }
        Ok(())
    }
}

/// An input the engine refused. The state is unchanged when this is returned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[serde(tag = "error", rename_all = "snake_case")]
#[non_exhaustive]
pub enum InputError {
    #[error("unknown agent `{0}`")]
    UnknownAgent(String),
    #[error("unknown queue `{0}`")]
    UnknownQueue(String),
    #[error("unknown conversation `{0}`")]
    UnknownConversation(String),
    /// An id that names conversations of several units the caller may see (add the unit).
    #[error("conversation `{id}` exists in units {}; say which with `unit`", units.join(", "))]
    AmbiguousConversation { id: String, units: Vec<String> },
    /// An id that names agents of several units the caller may see (add the unit).
    #[error("agent `{id}` exists in units {}; say which with `unit`", units.join(", "))]
    AmbiguousAgent { id: String, units: Vec<String> },
    #[error("agent `{0}` already exists")]
    DuplicateAgent(String),
    /// A field of the input that is wrong in itself, e.g. a time zone that does not exist.
    #[error("{message}")]
    Invalid { field: &'static str, message: String },
    #[error("conversation `{0}` already exists")]
    DuplicateConversation(String),
    #[error("{0}")]
    UnknownPresence(String),
    #[error("pause cause `{0}` is not defined")]
    UnknownPauseCause(String),
    #[error("unknown workflow `{0}`")]
    UnknownWorkflow(String),
    #[error("no open task `{0}`")]
    UnknownTask(String),
    #[error("unknown workflow instance `{0}`")]
    UnknownInstance(String),
    /// A transition the state machine does not allow, e.g. accepting an offer that timed out.
    #[error("{0}")]
    Illegal(String),
}

/// Why the engine could not be started or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("the engine has stopped")]
    Stopped,
    /// The engine loop stopped on its own: its store failed (memory was ahead of the journal).
    #[error("the engine stopped: {0}")]
    Failed(#[source] std::sync::Arc<crate::store::StoreError>),
    /// The engine thread panicked (its message is on stderr).
    #[error("the engine thread ended without saying why (it panicked; see stderr)")]
    Panicked,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The input was applied but could not be made durable; the engine stopped.
    #[error("not stored, the engine stopped: {0}")]
    NotDurable(String),
    #[error("{0}")]
    Unsupported(String),
}

/// An error with its causes, each said once. A library error's message says what went wrong
/// in full and its `source()` keeps the error it came from, so printing every cause would
/// repeat them; this prints each only if the text so far does not hold it (and reqwest's own
/// message, which only says that sending failed, gets its causes): `error sending request ...: ...: invalid peer certificate: UnknownIssuer`.
pub fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// A file rota was asked to write (`rota init`, `rota types`) could not be written, or one it
/// would merge into or write beside is not as it expects.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    #[error("cannot write {}: {source}", path.display())]
    Io { path: std::path::PathBuf, source: std::io::Error },
    /// The file or folder is there, and rota will not touch it: settings that are not JSON,
    /// a folder that already holds rules.
    #[error("{}: {message}", path.display())]
    Refused { path: std::path::PathBuf, message: String },
}
