//! A property-based API fuzzer driven by the OpenAPI document, against the real server on
//! port 0: for every operation it generates requests that the document declares valid (body
//! schemas, query and path parameters: lengths, patterns, enums, ranges, item counts, formats)
//! and sends them with each role's session until one has the role. The property:
//!
//! > A request the document calls valid is never refused as malformed (400), never answered
//! > with a 5xx (but 503 `busy`, where documented), every status it gets is one the operation
//! > documents, and a rule refusal (422) names a code the operation's 422 answer documents.
//!
//! Generation is proptest's (`string_regex` for patterns), from a deterministic seed so a
//! failure repeats; `CUSTOS_FUZZ_CASES` raises the number of requests per operation. Values
//! whose `format` the generator does not know how to make valid (the opaque paging cursor, which
//! only a `Link` header hands out) are left out when optional. Excluded: the device endpoints
//! (Ed25519-signed by a device: a fuzzed body fails the signature first), the live stream, and
//! the calls that end the fuzzer's own sessions (sign-out, password change, revocations).

mod common;

use std::collections::HashMap;

use common::{Reply, Server};
use custos_server::domain::role::Role;
use hyper::Method;
use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union, ValueTree};
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value, json};

/// Operations the fuzzer leaves alone, and why (see the module docs).
const EXCLUDED: &[(&str, &str)] = &[
    ("post", "/api/v1/devices/{id}/batches"),
    ("post", "/api/v1/devices/{id}/heartbeats"),
    ("post", "/api/v1/devices/{id}/policy"),
    ("get", "/api/v1/alerts/stream"),
    ("delete", "/api/v1/session"),
    ("post", "/api/v1/session/password"),
    ("delete", "/api/v1/users/{id}/sessions"),
    ("post", "/api/v1/users/{id}/disable"),
    ("post", "/api/v1/devices/{id}/revoke"),
];

/// Formats the generator can make valid values of.
const KNOWN_FORMATS: &[&str] = &[
    "date",
    "date-time",
    "ed25519-public-key",
    "int32",
    "int64",
    "uint32",
    "uint64",
];

/// Longest generated free text (schemas allow more; long values add time, not coverage).
const TEXT_MAX: usize = 40;

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap_or_default();
            resolve(doc, &doc["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// Whether the generator can make a valid value of `schema`.
fn can_generate(doc: &Value, schema: &Value) -> bool {
    let schema = resolve(doc, schema);
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        return options.iter().any(|o| can_generate(doc, o));
    }
    schema
        .get("format")
        .and_then(Value::as_str)
        .is_none_or(|f| KNOWN_FORMATS.contains(&f))
}

fn strip_anchors(pattern: &str) -> &str {
    let p = pattern.strip_prefix('^').unwrap_or(pattern);
    p.strip_suffix('$').unwrap_or(p)
}

fn usize_of(schema: &Value, key: &str) -> Option<usize> {
    schema
        .get(key)
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
}

fn string_strategy(schema: &Value) -> BoxedStrategy<Value> {
    let min = usize_of(schema, "minLength").unwrap_or(0);
    let max = usize_of(schema, "maxLength").unwrap_or(usize::MAX);
    match schema.get("format").and_then(Value::as_str) {
        Some("date-time") => {
            return (946_684_800_i64..4_102_444_800)
                .prop_map(|s| {
                    let t = custos_server::domain::time::Timestamp::from_unix_ms(s * 1000);
                    Value::String(t.map(|t| t.to_string()).unwrap_or_default())
                })
                .boxed();
        }
        Some("date") => {
            return (2000_u32..2100, 1_u32..=12, 1_u32..=28)
                .prop_map(|(y, m, d)| Value::String(format!("{y:04}-{m:02}-{d:02}")))
                .boxed();
        }
        Some("ed25519-public-key") => {
            return any::<u32>()
                .prop_map(|n| Value::String(common::device_key_b64(n)))
                .boxed();
        }
        _ => {}
    }
    let text = match schema.get("pattern").and_then(Value::as_str) {
        Some(pattern) => proptest::string::string_regex(strip_anchors(pattern))
            .unwrap_or_else(|e| panic!("pattern {pattern}: {e}"))
            .boxed(),
        None => {
            let upper = max.min(TEXT_MAX.max(min));
            proptest::string::string_regex(&format!("(?s).{{{min},{upper}}}"))
                .expect("a length range")
                .boxed()
        }
    };
    text.prop_filter("length", move |s| (min..=max).contains(&s.chars().count()))
        .prop_map(Value::String)
        .boxed()
}

fn integer_strategy(schema: &Value) -> BoxedStrategy<Value> {
    let min = schema
        .get("minimum")
        .and_then(Value::as_i64)
        .unwrap_or(-1_000_000);
    let max = schema
        .get("maximum")
        .and_then(Value::as_i64)
        .unwrap_or(1_000_000_000);
    let format_max = match schema.get("format").and_then(Value::as_str) {
        Some("int32") => i64::from(i32::MAX),
        Some("uint32") => i64::from(u32::MAX),
        _ => i64::MAX,
    };
    (min..=max.min(format_max)).prop_map(|n| json!(n)).boxed()
}

fn object_strategy(doc: &Value, schema: &Value, depth: u32) -> BoxedStrategy<Value> {
    let required: Vec<String> = schema["required"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut fields: Vec<BoxedStrategy<Option<(String, Value)>>> = Vec::new();
    for (name, property) in schema["properties"].as_object().into_iter().flatten() {
        let is_required = required.contains(name);
        if !is_required && !can_generate(doc, property) {
            continue;
        }
        let name = name.clone();
        let value = strategy(doc, property, depth + 1);
        let field = value.prop_map(move |v| Some((name.clone(), v)));
        fields.push(if is_required {
            field.boxed()
        } else {
            prop_oneof![Just(None), field].boxed()
        });
    }
    fields
        .prop_map(|fields| Value::Object(fields.into_iter().flatten().collect::<Map<_, _>>()))
        .boxed()
}

/// A strategy of values `schema` (in `doc`) calls valid.
fn strategy(doc: &Value, schema: &Value, depth: u32) -> BoxedStrategy<Value> {
    let schema = resolve(doc, schema);
    assert!(depth < 12, "schema nesting too deep: {schema}");
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let options: Vec<_> = options
            .iter()
            .filter(|o| can_generate(doc, o))
            .map(|o| strategy(doc, o, depth + 1))
            .collect();
        return Union::new(options).boxed();
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        if let [only] = all.as_slice() {
            return strategy(doc, only, depth + 1);
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return proptest::sample::select(values.clone()).boxed();
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec!["object"],
    };
    let options: Vec<BoxedStrategy<Value>> = types
        .into_iter()
        .map(|t| match t {
            "null" => Just(Value::Null).boxed(),
            "boolean" => any::<bool>().prop_map(Value::Bool).boxed(),
            "integer" => integer_strategy(schema),
            "number" => (-1.0e6_f64..1.0e6).prop_map(|n| json!(n)).boxed(),
            "string" => string_strategy(schema),
            "array" => {
                let items = strategy(doc, &schema["items"], depth + 1);
                let min = usize_of(schema, "minItems").unwrap_or(0);
                let max = usize_of(schema, "maxItems").unwrap_or(6).min(min + 6);
                let unique = schema["uniqueItems"].as_bool().unwrap_or(false);
                proptest::collection::vec(items, min..=max)
                    .prop_filter("unique items", move |v| {
                        !unique || v.iter().enumerate().all(|(i, x)| !v[..i].contains(x))
                    })
                    .prop_map(Value::Array)
                    .boxed()
            }
            _ => object_strategy(doc, schema, depth),
        })
        .collect();
    Union::new(options).boxed()
}

/// One fuzzable operation: method, documented path, and generators of its parts.
struct Operation {
    method: String,
    path: String,
    body: Option<BoxedStrategy<Value>>,
    /// Query and path parameters as one object, by name.
    params: BoxedStrategy<Value>,
    path_params: Vec<String>,
    documented_422: String,
    /// The statuses the operation documents.
    statuses: Vec<u16>,
}

fn operations(doc: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let full = path.clone();
            if EXCLUDED.contains(&(method.as_str(), full.as_str())) {
                continue;
            }
            let body = op["requestBody"]["content"]["application/json"]
                .get("schema")
                .map(|s| strategy(doc, s, 0));
            let mut properties = Map::new();
            let mut required = Vec::new();
            let mut path_params = Vec::new();
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap().to_owned();
                if p["in"] == "path" {
                    path_params.push(name.clone());
                }
                if p["required"].as_bool().unwrap_or(false) {
                    required.push(Value::String(name.clone()));
                }
                properties.insert(name, p["schema"].clone());
            }
            let params = object_strategy(
                doc,
                &json!({"type": "object", "properties": properties, "required": required}),
                0,
            );
            out.push(Operation {
                method: method.to_uppercase(),
                path: full,
                body,
                params,
                path_params,
                documented_422: op["responses"]["422"]["description"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                statuses: op["responses"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter_map(|(code, _)| code.parse().ok())
                    .collect(),
            });
        }
    }
    out
}

fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn param_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The concrete path and query of one generated request; known ids fill path parameters half
/// of the time, so bodies are also judged past the lookup.
fn target(op: &Operation, params: &Value, known: &HashMap<String, String>, pick: bool) -> String {
    let mut path = op.path.clone();
    let mut query = Vec::new();
    for (name, value) in params.as_object().into_iter().flatten() {
        if op.path_params.contains(name) {
            let id = match (pick, known.get(&op.path)) {
                (true, Some(id)) => id.clone(),
                _ => param_text(value),
            };
            path = path.replace(&format!("{{{name}}}"), &percent(&id));
        } else {
            query.push(format!("{name}={}", percent(&param_text(value))));
        }
    }
    if query.is_empty() {
        path
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

/// Send as each role in turn until one is not refused for its role (403 `forbidden`).
async fn send(
    server: &Server,
    tokens: &[(Role, String)],
    method: &Method,
    uri: &str,
    body: Option<&Value>,
) -> Reply {
    let mut last = None;
    for (_, token) in tokens {
        let reply = server
            .call(method.clone(), uri, Some(token), body.cloned())
            .await;
        if reply.status != 403 {
            return reply;
        }
        last = Some(reply);
    }
    last.expect("at least one role")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_valid_requests_are_never_refused_as_malformed_nor_fail() {
    let server = Server::start().await;
    let tokens_by_role = server.tokens_per_role().await;
    let tokens: Vec<(Role, String)> = Role::ALL
        .into_iter()
        .map(|r| (r, tokens_by_role[&r].clone()))
        .collect();
    let admin = &tokens_by_role[&Role::Admin];
    // Something for the path parameters to name.
    let victim = server
        .call(
            Method::POST,
            "/api/v1/users",
            Some(admin),
            Some(
                json!({"username": "victim", "password": common::INITIAL_PASSWORD,
                        "roles": ["guard"]}),
            ),
        )
        .await;
    assert_eq!(victim.status, 201, "{:?}", victim.body);
    let victim = param_text(&victim.body["id"]);
    let device = server
        .call(
            Method::POST,
            "/api/v1/devices",
            Some(admin),
            Some(json!({"id": "desk-9", "kind": "desk",
                        "public_key": common::device_key_b64(9_999_999)})),
        )
        .await;
    assert_eq!(device.status, 201, "{:?}", device.body);
    server
        .exec(
            "INSERT INTO alerts (kind, severity, cause, raised_at_ms, last_seen_at_ms)
             VALUES ('reader_silent', 'high', 'fuzz', 1, 1)",
        )
        .await;
    let known: HashMap<String, String> = [
        ("/api/v1/users/{id}/password", victim.as_str()),
        ("/api/v1/users/{id}/enable", victim.as_str()),
        ("/api/v1/users/{id}/sessions", victim.as_str()),
        ("/api/v1/devices/{id}/key", "desk-9"),
        ("/api/v1/alerts/{id}", "1"),
        ("/api/v1/alerts/{id}/ack", "1"),
        ("/api/v1/alerts/{id}/resolve", "1"),
    ]
    .into_iter()
    .map(|(p, id)| (p.to_owned(), id.to_owned()))
    .collect();

    let doc = server
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await
        .body;
    let cases: u32 = std::env::var("CUSTOS_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(48);
    let mut runner = TestRunner::new(Config {
        rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha,
        ..Config::default()
    });
    let mut failures = Vec::new();
    let mut sent = 0;
    let mut statuses: std::collections::BTreeMap<String, u32> = Default::default();
    for op in operations(&doc) {
        let method: Method = op.method.parse().unwrap();
        for case in 0..cases {
            let params = op.params.new_tree(&mut runner).unwrap().current();
            let body = op
                .body
                .as_ref()
                .map(|b| b.new_tree(&mut runner).unwrap().current());
            let uri = target(&op, &params, &known, case % 2 == 0);
            let reply = send(&server, &tokens, &method, &uri, body.as_ref()).await;
            sent += 1;
            *statuses
                .entry(format!("{} {} {}", op.method, op.path, reply.status))
                .or_insert(0) += 1;
            let code = reply.error().to_owned();
            let refused = match reply.status {
                400 => true,
                422 => !op.documented_422.contains(&format!("`{code}`")),
                s => (s >= 500 && s != 503) || !op.statuses.contains(&s),
            };
            if refused
                && failures
                    .iter()
                    .filter(|f: &&String| f.starts_with(&format!("{} {} ", op.method, op.path)))
                    .count()
                    < 2
            {
                failures.push(format!(
                    "{} {} {uri} {} → {} {}",
                    op.method,
                    op.path,
                    body.as_ref().map(Value::to_string).unwrap_or_default(),
                    reply.status,
                    reply.body
                ));
            }
        }
    }
    for (what, n) in &statuses {
        eprintln!("{what}: {n}");
    }
    assert!(sent > 100, "only {sent} requests sent");
    assert!(
        failures.is_empty(),
        "{} schema-valid requests refused or failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let created = statuses.iter().filter(|(k, _)| k.ends_with(" 201")).count();
    assert!(
        created >= 5,
        "too few operations ever succeeded: {statuses:?}"
    );
}
