//! The OpenAPI document at `/api/v1/openapi.json` against the live router: it is OpenAPI 3.x,
//! every reference resolves, every documented operation is routed (and no other method on a
//! documented path), live answers validate against the documented schemas, and the mirror of
//! the device messages matches what `custos_protocol::uplink` serialises.
//!
//! The schema check ([`check`]) is a small strict validator: `$ref`, `allOf`, `oneOf`, `type`
//! (including `null`), `enum`, `items`, `required`, and, unlike JSON Schema's default, it
//! refuses an object key the schema does not list. So a field added to or renamed in an answer
//! without its schema changing fails here.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{INITIAL_PASSWORD, Server, raw_request};
use custos_protocol::epc::Epc;
use custos_protocol::uplink::{
    AlarmReason, AllowedCarrier, Batch, BatchAck, DeviceFault, DeviceFaultKind, Direction,
    Directive, Event, EventBody, GatePolicy, HealthState, Heartbeat, HeartbeatAck, LocalVerdict,
    NamedHealth, Outcome, PolicyRequest, ReaderFault, ReaderHealth, ScannedCode, TagSighting,
    Verdict,
};
use hyper::Method;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{Map, Value, json};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Follow a `$ref` into `#/components/schemas`.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("foreign $ref {r}"));
            let target = &doc["components"]["schemas"][name];
            assert!(!target.is_null(), "dangling $ref {r}");
            resolve(doc, target)
        }
        None => schema,
    }
}

/// The object properties and required keys of `schema`, merged over `allOf`.
fn object_shape(
    doc: &Value,
    schema: &Value,
    props: &mut Map<String, Value>,
    req: &mut Vec<String>,
) {
    let schema = resolve(doc, schema);
    if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
        for part in parts {
            object_shape(doc, part, props, req);
        }
    }
    if let Some(p) = schema.get("properties").and_then(Value::as_object) {
        props.extend(p.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    if let Some(r) = schema.get("required").and_then(Value::as_array) {
        req.extend(r.iter().filter_map(Value::as_str).map(str::to_owned));
    }
}

fn type_matches(name: &str, value: &Value) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        other => panic!("unknown type {other}"),
    }
}

/// Check `value` against `schema` strictly (see the module docs); `at` names the place.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let fits = options
            .iter()
            .filter(|o| check(doc, o, value, at).is_ok())
            .count();
        return if fits >= 1 {
            Ok(())
        } else {
            let why: Vec<String> = options
                .iter()
                .filter_map(|o| check(doc, o, value, at).err())
                .collect();
            Err(format!("{at}: {value} fits no alternative: {why:?}"))
        };
    }
    match schema.get("type") {
        Some(Value::String(t)) if !type_matches(t, value) => {
            return Err(format!("{at}: {value} is not {t}"));
        }
        Some(Value::Array(ts)) if !ts.iter().any(|t| type_matches(t.as_str().unwrap(), value)) => {
            return Err(format!("{at}: {value} is none of {ts:?}"));
        }
        _ => {}
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            return Err(format!("{at}: {value} not in {allowed:?}"));
        }
    }
    if let (Some(items), Some(values)) = (schema.get("items"), value.as_array()) {
        for (i, v) in values.iter().enumerate() {
            check(doc, items, v, &format!("{at}[{i}]"))?;
        }
    }
    if let Some(object) = value.as_object() {
        let (mut props, mut req) = (Map::new(), Vec::new());
        object_shape(doc, schema, &mut props, &mut req);
        if props.is_empty() && req.is_empty() {
            // A free-form object (`detail`, audit `before`/`after`).
            return Ok(());
        }
        for key in &req {
            if !object.contains_key(key) {
                return Err(format!("{at}: required {key} missing in {value}"));
            }
        }
        for (key, v) in object {
            let Some(prop) = props.get(key) else {
                return Err(format!("{at}: undocumented key {key}"));
            };
            check(doc, prop, v, &format!("{at}.{key}"))?;
        }
    }
    Ok(())
}

/// The documented JSON schema of the `status` answer of `method path`.
fn answer_schema<'a>(doc: &'a Value, method: &str, path: &str, status: u16) -> &'a Value {
    let op = &doc["paths"][path][method];
    assert!(!op.is_null(), "{method} {path} is not documented");
    let schema = &op["responses"][status.to_string()]["content"]["application/json"]["schema"];
    assert!(
        !schema.is_null(),
        "{method} {path} documents no JSON answer for {status}"
    );
    schema
}

async fn document(server: &Server) -> Value {
    let reply = server
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["content-type"], "application/json");
    reply.body
}

fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method).is_some() {
                out.push((method.to_owned(), path.clone()));
            }
        }
    }
    out
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_and_self_consistent() {
    let server = Server::start().await;
    let doc = document(&server).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "Custos");

    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 100);
    for r in &refs {
        resolve(&doc, &json!({ "$ref": r }));
    }

    let ops = operations(&doc);
    let mut ids: Vec<&str> = ops
        .iter()
        .map(|(m, p)| doc["paths"][p][m]["operationId"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "operation ids are unique");

    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    let public = [
        ("post", "/api/v1/session"),
        ("get", "/api/v1/openapi.json"),
        ("get", "/api/v1/server-key"),
    ];
    for (method, path) in &ops {
        let op = &doc["paths"][path][method];
        assert!(path.starts_with("/api/v1/"), "{path}");
        let security = op["security"].as_array();
        if public.contains(&(method.as_str(), path.as_str())) {
            assert!(
                security.is_none(),
                "{method} {path} needs no authentication"
            );
        } else {
            let security = security.unwrap_or_else(|| panic!("{method} {path}: no security"));
            for requirement in security {
                for name in requirement.as_object().unwrap().keys() {
                    assert!(schemes.contains_key(name), "{method} {path}: scheme {name}");
                }
            }
            // Every authenticated operation documents its refusals in the error format.
            let refusal = if path.contains("/devices/{id}/") {
                "401"
            } else {
                "403"
            };
            let schema = &op["responses"][refusal]["content"]["application/json"]["schema"];
            assert_eq!(
                schema["$ref"], "#/components/schemas/ErrorBody",
                "{method} {path}"
            );
        }
        let success = op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .filter(|s| s.starts_with('2'))
            .count();
        assert_eq!(success, 1, "{method} {path}: one success status");
    }
    // INTERFACES.md's endpoints, plus list and get for each resource and a carrier history.
    for (method, path) in [
        ("post", "/api/v1/session"),
        ("post", "/api/v1/users"),
        ("get", "/api/v1/users"),
        ("post", "/api/v1/people"),
        ("get", "/api/v1/people"),
        ("get", "/api/v1/people/{id}"),
        ("post", "/api/v1/zones"),
        ("get", "/api/v1/zones"),
        ("post", "/api/v1/devices"),
        ("get", "/api/v1/devices"),
        ("post", "/api/v1/carriers"),
        ("get", "/api/v1/carriers"),
        ("get", "/api/v1/carriers/{id}"),
        ("get", "/api/v1/carriers/{id}/history"),
        ("post", "/api/v1/signouts"),
        ("get", "/api/v1/signouts"),
        ("get", "/api/v1/signouts/{id}"),
        ("post", "/api/v1/signouts/{id}/approve"),
        ("post", "/api/v1/signouts/{id}/issue"),
        ("post", "/api/v1/signouts/{id}/return"),
        ("get", "/api/v1/alerts"),
        ("get", "/api/v1/alerts/{id}"),
        ("post", "/api/v1/alerts/{id}/ack"),
        ("post", "/api/v1/alerts/{id}/resolve"),
        ("get", "/api/v1/alerts/stream"),
        ("get", "/api/v1/audit"),
        ("post", "/api/v1/devices/{id}/batches"),
        ("get", "/api/v1/openapi.json"),
    ] {
        assert!(
            ops.contains(&(method.to_owned(), path.to_owned())),
            "{method} {path} is not documented"
        );
    }
    server.stop().await.unwrap();
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "1")
        .replace("{tag}", "epc%3A3474257BF40000000000162E")
}

/// Without a session every documented operation answers something other than 404 and 405
/// (401 before any lookup, or 200/4xx for the public ones), and every other method on a
/// documented path answers 405. A route missing from the router, or served at another path
/// or method than documented, fails.
#[tokio::test]
async fn every_documented_operation_is_routed_and_nothing_else_on_its_path() {
    let server = Server::start().await;
    let doc = document(&server).await;
    let ops = operations(&doc);
    assert!(ops.len() >= 36, "{}", ops.len());
    for (method, path) in &ops {
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let reply = raw_request(server.addr, m, &concrete(path), &[], None).await;
        assert!(
            ![404, 405].contains(&reply.status),
            "{method} {path}: {} {:?}",
            reply.status,
            reply.body
        );
    }
    for path in doc["paths"].as_object().unwrap().keys() {
        for method in METHODS {
            if doc["paths"][path].get(method).is_some() {
                continue;
            }
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let reply = raw_request(server.addr, m, &concrete(path), &[], None).await;
            assert_eq!(
                reply.status, 405,
                "{method} {path} is served but not documented"
            );
        }
    }
    // The check can fail: an undocumented path is not routed.
    let reply = raw_request(server.addr, Method::GET, "/api/v1/nothing", &[], None).await;
    assert_eq!((reply.status, reply.error()), (404, "not_found"));
    server.stop().await.unwrap();
}

fn epc(n: u16) -> Epc {
    Epc::from_hex(&format!("3474257BF40000000000{n:04X}")).unwrap()
}

fn sighting(n: u16) -> TagSighting {
    TagSighting {
        epc: epc(n),
        antenna_first: 1,
        antenna_last: 3,
        reads: 4,
        peak_rssi: 200,
        first_ms: 1_767_225_600_000,
        last_ms: 1_767_225_600_400,
    }
}

fn health(state: HealthState, fault: Option<ReaderFault>) -> ReaderHealth {
    ReaderHealth {
        state,
        fault,
        frames_ok: 10,
        checksum_errors: 1,
        dropped_bytes: 2,
        last_read_ms: Some(1_767_225_600_000),
    }
}

/// Protocol values covering every variant of every uplink enum, as `(schema name, JSON)`.
fn protocol_samples() -> Vec<(&'static str, Value)> {
    let bodies = vec![
        EventBody::Passage {
            reader: "uhf-main".into(),
            direction: Direction::Out,
            tags: vec![sighting(1)],
            badges: vec![sighting(2)],
            local_verdict: Some(LocalVerdict {
                alarm: true,
                policy_version: 3,
                reason: Some(AlarmReason::NoPolicy),
            }),
        },
        EventBody::Passage {
            reader: "uhf-main".into(),
            direction: Direction::In,
            tags: vec![],
            badges: vec![],
            local_verdict: None,
        },
        EventBody::CabinetSnapshot {
            reader: "shelves".into(),
            present: vec![epc(1), epc(2)],
            added: vec![epc(2)],
            removed: vec![epc(3)],
        },
        EventBody::Scan {
            reader: "desk".into(),
            code: ScannedCode::Barcode {
                text: "CU-1".into(),
            },
        },
        EventBody::Scan {
            reader: "desk".into(),
            code: ScannedCode::EmCard {
                id: "1A00B54E12".into(),
            },
        },
        EventBody::ReaderHealth {
            reader: "uhf-main".into(),
            health: health(HealthState::Fault, Some(ReaderFault::NoReply)),
        },
        EventBody::ReaderHealth {
            reader: "uhf-main".into(),
            health: health(HealthState::Degraded, Some(ReaderFault::SerialLost)),
        },
        EventBody::ReaderHealth {
            reader: "uhf-main".into(),
            health: health(
                HealthState::Degraded,
                Some(ReaderFault::AntennaMissing { antenna: 2 }),
            ),
        },
        EventBody::ReaderHealth {
            reader: "uhf-main".into(),
            health: health(
                HealthState::Fault,
                Some(ReaderFault::Other { detail: "x".into() }),
            ),
        },
        EventBody::TurnedBack {
            reader: "uhf-main".into(),
            passage_seq: 1,
            tags: vec![epc(1)],
        },
    ]
    .into_iter()
    .chain(
        [
            DeviceFaultKind::OutboxFull,
            DeviceFaultKind::StorageError,
            DeviceFaultKind::GateIoLost,
            DeviceFaultKind::ClockStep,
            DeviceFaultKind::PolicyExpired,
            DeviceFaultKind::Other,
        ]
        .map(|kind| EventBody::DeviceFault {
            kind,
            detail: "detail".into(),
        }),
    );
    let events: Vec<Event> = bodies
        .enumerate()
        .map(|(i, body)| Event {
            seq: i as u64 + 1,
            at_ms: 1_767_225_600_000 + i as i64,
            body,
        })
        .collect();
    let reasons = [
        AlarmReason::UnauthorizedRemoval,
        AlarmReason::ClearanceViolation,
        AlarmReason::UnknownTag,
        AlarmReason::TagCloneSuspected,
        AlarmReason::SignoutExpired,
        AlarmReason::BorrowerAbsent,
        AlarmReason::BadgeMissing,
        AlarmReason::PolicyExpired,
        AlarmReason::ClockUntrusted,
        AlarmReason::NoPolicy,
        AlarmReason::Other,
    ];
    let mut verdicts = vec![Verdict {
        seq: 1,
        outcome: Outcome::Allowed,
    }];
    verdicts.extend(reasons.iter().enumerate().map(|(i, reason)| Verdict {
        seq: i as u64 + 2,
        outcome: Outcome::Alarm {
            reason: *reason,
            alert_id: (i % 2 == 0).then(|| "7".to_owned()),
        },
    }));
    let directives = vec![
        Directive::SoundAlarm {
            duration_ms: 30_000,
            lock_door: true,
            alert_id: Some("7".into()),
        },
        Directive::SoundAlarm {
            duration_ms: 30_000,
            lock_door: false,
            alert_id: None,
        },
        Directive::SilenceAlarm {
            alert_id: "7".into(),
        },
        Directive::RefreshPolicy,
    ];
    let batch = Batch {
        device_id: "gate-1".into(),
        epoch: 1,
        events,
    };
    let ack = BatchAck {
        device_id: "gate-1".into(),
        epoch: 1,
        acked_through: 21,
        verdicts,
        directives: directives.clone(),
        policy_version: 2,
    };
    let heartbeat = Heartbeat {
        device_id: "gate-1".into(),
        epoch: 1,
        hb_seq: 5,
        at_ms: 1_767_225_600_000,
        readers: vec![NamedHealth {
            reader: "uhf-main".into(),
            health: health(HealthState::Ok, None),
        }],
        outbox_depth: 0,
        policy_version: 2,
        faults: vec![DeviceFault {
            kind: DeviceFaultKind::GateIoLost,
            since_ms: 1_767_225_500_000,
            detail: "detail".into(),
        }],
    };
    let hb_ack = HeartbeatAck {
        device_id: "gate-1".into(),
        epoch: 1,
        hb_seq: 5,
        policy_version: 2,
        directives,
    };
    let request = PolicyRequest {
        device_id: "gate-1".into(),
        epoch: 1,
        at_ms: 1_767_225_600_000,
        have_version: 1,
    };
    let policy = GatePolicy {
        device_id: "gate-1".into(),
        version: 2,
        issued_at_ms: 1_767_225_600_000,
        valid_until_ms: 1_767_229_200_000,
        allowed: vec![AllowedCarrier {
            epc: epc(1),
            until_ms: 1_767_229_200_000,
            borrower_badges: vec![epc(2)],
            badge_required: true,
        }],
        badges: vec![epc(2), epc(3)],
    };
    vec![
        ("Batch", to_json(&batch)),
        ("BatchAck", to_json(&ack)),
        ("Heartbeat", to_json(&heartbeat)),
        ("HeartbeatAck", to_json(&hb_ack)),
        ("PolicyRequest", to_json(&request)),
        ("GatePolicy", to_json(&policy)),
    ]
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap()
}

#[tokio::test]
async fn the_device_message_mirror_matches_the_protocol() {
    let server = Server::start().await;
    let doc = document(&server).await;
    for (name, value) in protocol_samples() {
        let schema = json!({ "$ref": format!("#/components/schemas/{name}") });
        check(&doc, &schema, &value, name).unwrap_or_else(|e| panic!("{e}"));
    }
    // The check can fail: an extra field, a missing one, an unknown variant.
    let (_, batch) = protocol_samples().remove(0);
    let batch_schema = json!({ "$ref": "#/components/schemas/Batch" });
    let mut extra = batch.clone();
    extra["events"][0]["extra"] = json!(1);
    assert!(check(&doc, &batch_schema, &extra, "Batch").is_err());
    let mut missing = batch.clone();
    missing["events"][0]["body"]
        .as_object_mut()
        .unwrap()
        .remove("reader");
    assert!(check(&doc, &batch_schema, &missing, "Batch").is_err());
    let mut variant = batch;
    variant["events"][0]["body"]["type"] = json!("teleport");
    assert!(check(&doc, &batch_schema, &variant, "Batch").is_err());
    // A heartbeat without faults (an older daemon's, or one with none) is documented too.
    let (_, mut heartbeat) = protocol_samples().remove(2);
    heartbeat.as_object_mut().unwrap().remove("faults");
    let heartbeat_schema = json!({ "$ref": "#/components/schemas/Heartbeat" });
    check(&doc, &heartbeat_schema, &heartbeat, "Heartbeat").unwrap_or_else(|e| panic!("{e}"));
    server.stop().await.unwrap();
}

/// Call `method path`, expect `status`, and check the answer against the documented schema of
/// `template` (the path as documented).
async fn expect_documented(
    server: &Server,
    doc: &Value,
    token: Option<&str>,
    (method, path, template): (Method, &str, &str),
    body: Option<Value>,
    status: u16,
) -> Value {
    let reply = server.call(method.clone(), path, token, body).await;
    assert_eq!(reply.status, status, "{method} {path}: {:?}", reply.body);
    let m = method.as_str().to_lowercase();
    let schema = answer_schema(doc, &m, template, status);
    check(doc, schema, &reply.body, &format!("{method} {path}"))
        .unwrap_or_else(|e| panic!("answer differs from the document: {e}"));
    reply.body
}

#[tokio::test]
async fn live_answers_match_the_documented_schemas() {
    let server = Server::start().await;
    let doc = document(&server).await;
    let d = &doc;
    let s = &server;
    let login = expect_documented(
        s,
        d,
        None,
        (Method::POST, "/api/v1/session", "/api/v1/session"),
        Some(json!({"username": "admin", "password": common::ADMIN_PASSWORD})),
        200,
    )
    .await;
    let admin = login["token"].as_str().unwrap().to_owned();
    let a = Some(admin.as_str());
    for (name, role) in [
        ("officer", "security_officer"),
        ("keeper", "custodian"),
        ("guard", "guard"),
        ("auditor", "auditor"),
    ] {
        expect_documented(
            s,
            d,
            a,
            (Method::POST, "/api/v1/users", "/api/v1/users"),
            Some(json!({"username": name, "password": INITIAL_PASSWORD, "roles": [role]})),
            201,
        )
        .await;
    }
    expect_documented(
        s,
        d,
        a,
        (Method::GET, "/api/v1/users", "/api/v1/users"),
        None,
        200,
    )
    .await;
    let officer = s.activate("officer").await;
    let keeper = s.activate("keeper").await;
    let guard = s.activate("guard").await;
    let auditor = s.activate("auditor").await;
    let (o, k, g) = (
        Some(officer.as_str()),
        Some(keeper.as_str()),
        Some(guard.as_str()),
    );
    for (id, level) in [("vault", "S"), ("street", "public")] {
        expect_documented(
            s,
            d,
            a,
            (Method::POST, "/api/v1/zones", "/api/v1/zones"),
            Some(json!({"id": id, "name": id, "level": level})),
            201,
        )
        .await;
    }
    expect_documented(
        s,
        d,
        k,
        (Method::GET, "/api/v1/zones", "/api/v1/zones"),
        None,
        200,
    )
    .await;
    let key = Ed25519KeyPair::from_pkcs8(
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .unwrap()
            .as_ref(),
    )
    .unwrap();
    expect_documented(
        s,
        d,
        a,
        (Method::POST, "/api/v1/devices", "/api/v1/devices"),
        Some(
            json!({"id": "gate-1", "kind": "gate", "inside_zone": "vault",
                    "outside_zone": "street",
                    "public_key": STANDARD.encode(key.public_key().as_ref())}),
        ),
        201,
    )
    .await;
    expect_documented(
        s,
        d,
        o,
        (Method::GET, "/api/v1/devices", "/api/v1/devices"),
        None,
        200,
    )
    .await;
    let person = expect_documented(
        s,
        d,
        o,
        (Method::POST, "/api/v1/people", "/api/v1/people"),
        Some(
            json!({"name": "Alice", "department": "R&D", "category": "core",
                    "training_valid_until": "2099-01-01", "commitment_signed_on": "2025-01-01"}),
        ),
        201,
    )
    .await;
    let pid = person["id"].as_str().unwrap().to_owned();
    expect_documented(
        s,
        d,
        o,
        (Method::GET, "/api/v1/people", "/api/v1/people"),
        None,
        200,
    )
    .await;
    let people_one = format!("/api/v1/people/{pid}");
    expect_documented(
        s,
        d,
        k,
        (Method::GET, &people_one, "/api/v1/people/{id}"),
        None,
        200,
    )
    .await;
    let carrier = expect_documented(
        s,
        d,
        k,
        (Method::POST, "/api/v1/carriers", "/api/v1/carriers"),
        Some(
            json!({"control_no": "CU-1", "kind": "paper", "level": "S", "title": "t",
                    "owner_unit": "unit", "tags": ["epc:3474257BF40000000000162E"]}),
        ),
        201,
    )
    .await;
    let cid = carrier["id"].as_str().unwrap().to_owned();
    expect_documented(
        s,
        d,
        o,
        (Method::GET, "/api/v1/carriers", "/api/v1/carriers"),
        None,
        200,
    )
    .await;
    let one = format!("/api/v1/carriers/{cid}");
    expect_documented(
        s,
        d,
        k,
        (Method::GET, &one, "/api/v1/carriers/{id}"),
        None,
        200,
    )
    .await;
    let by_tag = "/api/v1/carriers/by-tag/epc:3474257BF40000000000162E";
    let template = "/api/v1/carriers/by-tag/{tag}";
    let full = expect_documented(s, d, k, (Method::GET, by_tag, template), None, 200).await;
    assert!(full.get("title").is_some());
    let summary = expect_documented(s, d, g, (Method::GET, by_tag, template), None, 200).await;
    assert!(summary.get("title").is_none());
    let signout = expect_documented(
        s,
        d,
        k,
        (Method::POST, "/api/v1/signouts", "/api/v1/signouts"),
        Some(
            json!({"carrier_ids": [cid], "borrower": pid, "purpose": "review",
                    "due_at": s.now().plus_secs(86_400).to_string(), "may_leave": false}),
        ),
        201,
    )
    .await;
    let sid = signout["id"].as_str().unwrap().to_owned();
    let step = |what: &str| format!("/api/v1/signouts/{sid}/{what}");
    expect_documented(
        s,
        d,
        o,
        (
            Method::POST,
            &step("approve"),
            "/api/v1/signouts/{id}/approve",
        ),
        None,
        200,
    )
    .await;
    expect_documented(
        s,
        d,
        k,
        (Method::POST, &step("issue"), "/api/v1/signouts/{id}/issue"),
        None,
        200,
    )
    .await;
    expect_documented(
        s,
        d,
        o,
        (Method::GET, "/api/v1/signouts", "/api/v1/signouts"),
        None,
        200,
    )
    .await;
    let signout_one = format!("/api/v1/signouts/{sid}");
    expect_documented(
        s,
        d,
        k,
        (Method::GET, &signout_one, "/api/v1/signouts/{id}"),
        None,
        200,
    )
    .await;
    expect_documented(
        s,
        d,
        k,
        (
            Method::POST,
            &step("return"),
            "/api/v1/signouts/{id}/return",
        ),
        Some(json!({})),
        200,
    )
    .await;
    let history = format!("/api/v1/carriers/{cid}/history");
    let items = expect_documented(
        s,
        d,
        k,
        (Method::GET, &history, "/api/v1/carriers/{id}/history"),
        None,
        200,
    )
    .await;
    assert!(items.as_array().unwrap().len() >= 4, "{items}");
    expect_documented(
        s,
        d,
        Some(auditor.as_str()),
        (Method::GET, "/api/v1/audit", "/api/v1/audit"),
        None,
        200,
    )
    .await;
    expect_documented(
        s,
        d,
        g,
        (Method::GET, "/api/v1/alerts", "/api/v1/alerts"),
        None,
        200,
    )
    .await;
    expect_documented(
        s,
        d,
        None,
        (Method::GET, "/api/v1/server-key", "/api/v1/server-key"),
        None,
        200,
    )
    .await;
    // Refusals are documented in the error format too.
    expect_documented(
        s,
        d,
        g,
        (Method::GET, &one, "/api/v1/carriers/{id}"),
        None,
        403,
    )
    .await;
    expect_documented(
        s,
        d,
        k,
        (Method::GET, "/api/v1/carriers/999", "/api/v1/carriers/{id}"),
        None,
        404,
    )
    .await;
    expect_documented(
        s,
        d,
        o,
        (
            Method::POST,
            &step("approve"),
            "/api/v1/signouts/{id}/approve",
        ),
        None,
        409,
    )
    .await;
    server.stop().await.unwrap();
}
