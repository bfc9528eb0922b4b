//! Errors at the library boundary: script diagnostics with file:line, and rejected inputs.

use std::fmt;

/// One problem found in a scripts folder, pointing at the line that caused it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
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
#[derive(Debug, thiserror::Error)]
pub struct LoadError {
    pub diagnostics: Vec<Diagnostic>,
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
pub enum EngineError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("the engine has stopped")]
    Stopped,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The input was applied but could not be made durable; the engine stopped.
    #[error("not stored, the engine stopped: {0}")]
    NotDurable(String),
    #[error("{0}")]
    Unsupported(String),
}
