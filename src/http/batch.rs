//! `POST /v1/batch`: many inputs in one request, handled in order as one batch of steps and
//! made durable in one commit, with one result per input. An input that is malformed,
//! refused or not allowed to the token fails alone.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Extension;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::actions::Subject;
use super::auth::Scope;
use super::conversations::{arrival, UnitParam};
use super::error::{ApiError, Body, Problem};
use super::Api;
use crate::engine::Engine;
use crate::error::InputError;
use crate::input::Input;
use crate::runtime::{BatchResults, Guard};
use crate::views::Changes;

/// Inputs one batch may hold: a bigger batch holds the engine longer than other clients
/// should wait.
pub(super) const MAX_INPUTS: usize = 1000;

/// `{"inputs": [{"arrive": {"id": "c1", "queue": "support"}}, {"accept": {...}}]}`: each
/// input as scenario files and the journal write it.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Batch {
    /// At most 1000.
    #[schemars(with = "Vec<BatchInput>")]
    inputs: Vec<Value>,
}

/// Describes one input of a batch: an object with one key, the input's name, whose value is
/// that input's fields. It is [`Input`]'s own schema with its variants as properties of one
/// object, which client generators read better than a `oneOf` of one-key objects.
struct BatchInput;

impl JsonSchema for BatchInput {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "BatchInput".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let input = generator.subschema_for::<Input>().to_value();
        let name = input["$ref"].as_str().and_then(|r| r.rsplit('/').next()).unwrap_or_default().to_string();
        let input = generator.definitions_mut().remove(&name).unwrap_or(input);
        let mut properties = serde_json::Map::new();
        for variant in input["oneOf"].as_array().into_iter().flatten() {
            for (key, schema) in variant["properties"].as_object().into_iter().flatten() {
                properties.insert(key.clone(), schema.clone());
            }
        }
        schemars::json_schema!({
            "description": "One input: `{\"arrive\": {...}}`, `{\"accept\": {...}}`, ... (exactly one key)",
            "type": "object",
            "properties": properties,
            "minProperties": 1,
            "maxProperties": 1,
            "additionalProperties": false,
        })
    }
}

/// The same body read straight into inputs: the fast way when every input is well formed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Inputs {
    inputs: Vec<Input>,
}

/// One input's result: its updates, or its problem; `status` as its own route would answer.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
enum Outcome {
    Done {
        status: u16,
        #[serde(flatten)]
        changes: Changes,
    },
    /// The problem document its own route would answer (with its `status`).
    Failed(Problem),
}

impl From<ApiError> for Outcome {
    fn from(error: ApiError) -> Self {
        Outcome::Failed(error.problem())
    }
}

#[derive(Serialize, JsonSchema)]
pub(super) struct Results {
    results: Vec<Outcome>,
}

pub(super) async fn handle(
    State(api): State<Api>,
    Extension(scope): Extension<Scope>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Reply, ApiError> {
    let body = body.map_err(|e| {
        ApiError::new(e.status(), "bad_body", format!("cannot read the request body: {}", e.body_text()))
    })?;
    // Read whole when every input is well formed; item by item otherwise, so that one
    // malformed input fails alone and says what is wrong with it.
    let parsed: Vec<Result<Input, ApiError>> = match serde_json::from_slice::<Inputs>(&body) {
        Ok(Inputs { inputs }) => inputs.into_iter().map(Ok).collect(),
        Err(_) => {
            let Body(batch) = Body::<Batch>::parse(&body)?;
            let bad = |e: serde_json::Error| ApiError::new(StatusCode::BAD_REQUEST, "bad_json", e.to_string());
            batch.inputs.into_iter().map(|v| serde_json::from_value::<Input>(v).map_err(bad)).collect()
        }
    };
    if parsed.len() > MAX_INPUTS {
        let message = format!("a batch holds at most {MAX_INPUTS} inputs, got {}", parsed.len());
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large", message).field("inputs"));
    }
    let mut results: Vec<Option<Outcome>> = Vec::with_capacity(parsed.len());
    let mut submitted = Vec::new();
    for input in parsed {
        match input.and_then(|input| admissible(&input).map(|()| input)) {
            Ok(input) => {
                let scope = scope.clone();
                let guard: Guard = Box::new(move |e, input| admit(e, &scope, input));
                submitted.push((input, Some(guard)));
                results.push(None);
            }
            Err(e) => results.push(Some(e.into())),
        }
    }
    let mut outcomes = submit(&api, &scope, submitted).await?.into_iter();
    let results = results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| match outcomes.next().expect("one outcome per input submitted") {
                Ok(updates) => Outcome::Done { status: 200, changes: Changes { id: None, updates } },
                Err(e) => ApiError::from(e).into(),
            })
        })
        .collect();
    Ok(Reply(Results { results }))
}

/// Submits the inputs to the engines holding what each is about, each engine's in one commit
/// (all at once); the outcomes in the inputs' order. Each partition says which of the inputs
/// its units would admit; an input none admits goes to the first, whose guard refuses it.
async fn submit(api: &Api, scope: &Scope, submitted: Vec<(Input, Option<Guard>)>) -> Result<BatchResults, ApiError> {
    if api.engines.handles().len() == 1 {
        return Ok(api.any().submit_many_guarded(submitted).await?);
    }
    let inputs: std::sync::Arc<Vec<Input>> = std::sync::Arc::new(submitted.iter().map(|(i, _)| i.clone()).collect());
    let asked = scope.clone();
    let admitted = api
        .each(scope, move |e| inputs.iter().map(|i| admit(e, &asked, &mut i.clone()).is_ok()).collect::<Vec<_>>())
        .await?;
    let reached = api.reached(scope);
    let mut groups: Vec<Vec<(Input, Option<Guard>)>> = (0..reached.len()).map(|_| Vec::new()).collect();
    let mut placed = Vec::with_capacity(submitted.len());
    for (n, item) in submitted.into_iter().enumerate() {
        let group = (0..reached.len()).find(|&g| admitted[g][n]).unwrap_or(0);
        placed.push(group);
        groups[group].push(item);
    }
    let answers = futures_util::future::try_join_all(
        reached.iter().zip(groups).map(|((_, handle), group)| handle.submit_many_guarded(group)),
    )
    .await?;
    let mut answers: Vec<_> = answers.into_iter().map(Vec::into_iter).collect();
    Ok(placed.into_iter().map(|g| answers[g].next().expect("one outcome per input submitted")).collect())
}

/// The results as JSON, written into a buffer sized for them at once: a reply to 1,000
/// inputs is hundreds of kilobytes, and growing a small buffer to that size costs as much as
/// writing it.
pub(super) struct Reply(Results);

impl axum::response::IntoResponse for Reply {
    fn into_response(self) -> axum::response::Response {
        let mut body = Vec::with_capacity(512 * self.0.results.len() + 64);
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => ([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response(),
            Err(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "reply_failed", e.to_string()).into_response(),
        }
    }
}

/// The inputs a batch takes: what agents and conversations do. The directory, tasks and
/// workflow instances have their own routes; the engine's own inputs none.
fn admissible(input: &Input) -> Result<(), ApiError> {
    match input {
        Input::CreateAgent { .. }
        | Input::UpdateAgent { .. }
        | Input::PushButton { .. }
        | Input::ResolveWorkflow { .. }
        | Input::DeliveryFailed { .. } => {
            let message = "this input is not taken in a batch; use its own route".to_string();
            Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "not_in_batch", message))
        }
        _ => Ok(()),
    }
}

/// What the single routes check, on the engine thread right before the input: the queue a
/// conversation arrives in, or the conversation, or else the agent it names, must be of the
/// token's units; a conversation's or agent's id becomes its key.
fn admit(engine: &Engine, scope: &Scope, input: &mut Input) -> Result<(), InputError> {
    // The agent of an accept or decline is one of the conversation's unit: the engine
    // resolves it there, so only the conversation is the subject.
    let conversation = input.conversation_mut().map(|c| (Subject::Conversation, c.clone()));
    let subject = conversation.or_else(|| input.agent_mut().map(|a| (Subject::Agent, a.clone())));
    match subject {
        Some((subject, id)) => subject.admit(engine, scope, &UnitParam::default(), id, input),
        None => arrival(engine, scope, input),
    }
}
