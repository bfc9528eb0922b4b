//! The OpenAPI 3.1 document, made from the route table and the Rust types each route reads
//! and writes (their JSON Schemas come from `schemars`), so it describes what is really sent.

use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

use super::error::Problem;
use super::RouteDoc;

/// Writes the schema of one type, its named parts going to the generator's definitions.
pub(super) type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

pub(super) fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// What a route answers with when it succeeds.
#[derive(Default)]
pub(super) enum Reply {
    /// Not declared: the document refuses to be made (a test makes it).
    #[default]
    Undeclared,
    /// JSON of a type, with its status (200, or 201 for what creates something).
    Json(u16, SchemaFn),
    /// Server-sent events.
    Events,
    /// Plain text (`/healthz`, `/metrics`).
    Text,
}

/// The types a route's query, body and reply are read from and written as.
#[derive(Default)]
pub(super) struct Schemas {
    pub(super) query: Option<SchemaFn>,
    pub(super) body: Option<SchemaFn>,
    pub(super) reply: Reply,
}

/// The schema's settings: JSON Schema 2020-12 (what OpenAPI 3.1 uses), its named parts under
/// `#/components/schemas`.
fn generator(serialize: bool) -> SchemaGenerator {
    let settings = SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "#/components/schemas".into();
            s.meta_schema = None;
        })
        .with_transform(RecursiveTransform(plain_enum as fn(&mut Schema)));
    let settings = if serialize { settings.for_serialize() } else { settings.for_deserialize() };
    settings.into_generator()
}

/// Writes an enum whose variants have doc comments (a `oneOf` of `const`s) as the plain
/// `enum` list generators turn into an enum type, the variants' docs in its description.
fn plain_enum(schema: &mut Schema) {
    let Some(Value::Array(variants)) = schema.get("oneOf") else { return };
    let words: Option<Vec<&str>> = variants.iter().map(|v| v.get("const").and_then(Value::as_str)).collect();
    let Some(words) = words else { return };
    let docs: Vec<String> = variants
        .iter()
        .zip(&words)
        .filter_map(|(v, w)| v.get("description").and_then(Value::as_str).map(|d| format!("`{w}`: {d}")))
        .collect();
    let words: Vec<Value> = words.into_iter().map(Value::from).collect();
    let described = schema.get("description").and_then(Value::as_str).map(str::to_string);
    let description = described.into_iter().chain(docs).collect::<Vec<_>>().join("\n\n");
    schema.remove("oneOf");
    schema.insert("type".into(), "string".into());
    schema.insert("enum".into(), words.into());
    if !description.is_empty() {
        schema.insert("description".into(), description.into());
    }
}

/// The names of a query type's fields: the parameters a route takes.
pub(super) fn property_names(query: SchemaFn) -> Vec<String> {
    let schema = inline(query, &mut generator(false));
    schema.get("properties").and_then(Value::as_object).map(|p| p.keys().cloned().collect()).unwrap_or_default()
}

/// A query type's schema with its own properties spelled out (a `$ref` is followed).
fn inline(query: SchemaFn, generator: &mut SchemaGenerator) -> Value {
    let schema = query(generator).to_value();
    match schema.get("$ref").and_then(Value::as_str) {
        // Parameters are listed one by one; the type itself is no schema of the document.
        Some(r) => {
            let name = r.rsplit('/').next().unwrap_or_default();
            generator.definitions_mut().remove(name).unwrap_or(schema)
        }
        None => schema,
    }
}

/// The tag of a route: its resource, the path's first word after `/v1`.
fn tag(path: &str) -> &str {
    let mut words = path.trim_start_matches('/').split('/');
    match words.next() {
        Some("v1") => words.next().unwrap_or("api"),
        _ => "operations",
    }
}

/// The whole document. Requests are described as the server reads them (a field with a
/// default is optional), replies as it writes them (every field is there, `null` when empty);
/// a type whose two shapes differ is named twice, its read shape as `NameInput`.
pub(super) fn document(routes: &[RouteDoc]) -> Value {
    let mut reads = generator(false);
    let read: Vec<(Option<Value>, Option<Value>)> = routes
        .iter()
        .map(|r| (r.schemas.query.map(|q| inline(q, &mut reads)), r.schemas.body.map(|b| b(&mut reads).to_value())))
        .collect();
    let mut writes = generator(true);
    let problem = writes.subschema_for::<Problem>().to_value();
    let written: Vec<Option<Value>> = routes
        .iter()
        .map(|r| match r.schemas.reply {
            Reply::Json(_, reply) => Some(reply(&mut writes).to_value()),
            _ => None,
        })
        .collect();
    let mut schemas = writes.take_definitions(true);
    let mut read_schemas = reads.take_definitions(true);
    let twice: Vec<String> = read_schemas
        .iter()
        .filter(|(name, s)| schemas.get(*name).is_some_and(|w| w != *s))
        .map(|(n, _)| n.clone())
        .collect();
    let rename = |v: &mut Value| rename_refs(v, &twice);
    for (name, mut schema) in std::mem::take(&mut read_schemas) {
        rename(&mut schema);
        let name = if twice.contains(&name) { format!("{name}Input") } else { name };
        schemas.insert(name, schema);
    }
    let mut paths = Map::new();
    for ((r, (query, body)), reply) in routes.iter().zip(read).zip(written) {
        let mut params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        if let Some(mut schema) = query {
            rename(&mut schema);
            let required: Vec<&str> =
                schema["required"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
            for (name, s) in schema["properties"].as_object().into_iter().flatten() {
                let mut s = s.clone();
                let description = s.as_object_mut().and_then(|o| o.remove("description"));
                let mut p =
                    json!({ "name": name, "in": "query", "required": required.contains(&name.as_str()), "schema": s });
                if let Some(d) = description {
                    p["description"] = d;
                }
                params.push(p);
            }
        }
        let mut responses = Map::new();
        let (status, content) = match (&r.schemas.reply, reply) {
            (Reply::Json(status, _), Some(schema)) => (*status, json!({ "application/json": { "schema": schema } })),
            (Reply::Events, _) => (200, json!({ "text/event-stream": { "schema": { "type": "string" } } })),
            (Reply::Text, _) => (200, json!({ "text/plain": { "schema": { "type": "string" } } })),
            _ => panic!("route {} {} declares no reply", r.method, r.path),
        };
        let description = match r.schemas.reply {
            Reply::Events => "Server-sent events, each named by its update's type, its data the update as JSON",
            _ if status == 201 => "Created",
            _ => "OK",
        };
        responses.insert(status.to_string(), json!({ "description": description, "content": content }));
        let failures: &[&str] =
            if r.open { &["400", "503"] } else { &["400", "401", "403", "404", "409", "422", "503"] };
        for code in failures {
            responses.insert(code.to_string(), json!({ "$ref": "#/components/responses/Problem" }));
        }
        let mut op = json!({
            "operationId": r.operation,
            "summary": r.summary,
            "tags": [tag(r.path)],
            "parameters": params,
            "responses": responses,
        });
        if let Some(mut body) = body {
            rename(&mut body);
            op["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": body } } });
        }
        if r.open {
            op["security"] = json!([]);
        }
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "rota",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Agents, queues and conversations of a rota contact center. Errors are RFC 9457 problem documents."
        },
        "paths": paths,
        "security": [{ "bearer": [] }],
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "responses": {
                "Problem": {
                    "description": "What went wrong and what to fix",
                    "content": { "application/problem+json": { "schema": problem } }
                }
            },
            "schemas": schemas,
        }
    })
}

/// Points the references to `names` at their read shapes (`NameInput`).
fn rename_refs(v: &mut Value, names: &[String]) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get_mut("$ref") {
                if let Some(name) = r.strip_prefix("#/components/schemas/").filter(|n| names.iter().any(|x| x == n)) {
                    *r = format!("#/components/schemas/{name}Input");
                }
            }
            o.values_mut().for_each(|v| rename_refs(v, names));
        }
        Value::Array(a) => a.iter_mut().for_each(|v| rename_refs(v, names)),
        _ => {}
    }
}
