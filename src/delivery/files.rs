//! The embedded default channel: each message written as a file to a folder, so a first run
//! shows real messages without any server.

use std::path::{Path, PathBuf};

use crate::notification::{Notification, Outcome};

#[derive(Clone, Debug)]
pub(super) struct Folder(PathBuf);

impl Folder {
    pub(super) fn new(path: &Path) -> Folder {
        Folder(path.to_path_buf())
    }

    /// The `rota serve` line for a channel writing here: `email:    .eml files in rota-outbox (why)`.
    pub(super) fn describe(&self, channel: &str, extension: &str, why: &str) -> String {
        format!("{:<10}.{extension} files in {} ({why})", format!("{channel}:"), self.0.display())
    }

    /// Writes `bytes` as `<id>-<channel>-<recipient>.<extension>`; written again by a retry, the
    /// file is the same.
    pub(super) fn write(&self, n: &Notification, extension: &str, bytes: &[u8]) -> Outcome {
        let safe: String = n
            .recipient
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
            .collect();
        let path = self.0.join(format!("{:06}-{}-{}-{safe}.{extension}", n.id, n.kind.as_str(), n.channel.as_str()));
        let written = std::fs::create_dir_all(&self.0).and_then(|()| {
            // Write and rename, so a reader never sees half a message.
            let partial = path.with_extension("partial");
            std::fs::write(&partial, bytes)?;
            std::fs::rename(&partial, &path)
        });
        match written {
            Ok(()) => Outcome::Sent { provider_id: None, detail: format!("written to {}", path.display()) },
            Err(e) => Outcome::Transient { error: format!("cannot write {}: {e}", path.display()), retry_at: None },
        }
    }
}
