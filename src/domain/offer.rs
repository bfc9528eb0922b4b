//! Offers: a conversation put to one or several agents, with a timeout; the first to accept wins.

use std::sync::Arc;

use crate::agent::AgentIx;
use crate::time::Timestamp;
use crate::timer::TimerKey;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Offer {
    pub id: u64,
    pub conversation: Arc<str>,
    /// Agents still ringing; an agent who declines leaves the list.
    pub agents: Vec<AgentIx>,
    pub expires: Timestamp,
    pub timer: TimerKey,
}
