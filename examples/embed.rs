//! Embedding rota in a Rust program: start an engine on the example scripts with a
//! virtual clock, put a conversation in a queue, and watch it being offered and answered.
//!
//! Run with `cargo run --example embed`.

use rota::conversation::NewConversation;
use rota::runtime::Builder;
use rota::time::{Duration, Timestamp};
use rota::{Input, VirtualClock};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let clock = VirtualClock::starting_at(Timestamp::parse_rfc3339("2026-03-02T09:00:00Z")?);
    let rota = Builder::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts")).clock(clock).start()?;

    for agent in ["olga", "ivan"] {
        rota.submit(Input::SignIn { agent: agent.into() }).await?;
        rota.submit(Input::SetStatus { agent: agent.into(), status: "callcenter".into() }).await?;
        rota.submit(Input::StartWorkDay { agent: agent.into() }).await?;
    }

    let arrive = NewConversation { id: "chat-1".into(), queue: "whatsapp_line".into(), ..Default::default() };
    for update in rota.submit(Input::Arrive(Box::new(arrive))).await? {
        println!("{}  {}", update.at, update.update.describe());
    }
    // Nobody answers for 12 hours: the chat passes to the next agent.
    for update in rota.advance(Duration::parse("12h")?).await? {
        println!("{}  {}", update.at, update.update.describe());
    }
    for update in rota.submit(Input::Accept { conversation: "chat-1".into(), agent: Some("ivan".into()) }).await? {
        println!("{}  {}", update.at, update.update.describe());
    }
    let ivan = rota.agent("ivan").await?.expect("ivan is defined in scripts/agents.lua");
    println!("ivan is {} since {}", ivan.state, ivan.state_since);
    rota.shutdown();
    Ok(())
}
