//! Exports over the real router: the EPCIS 2.0 document of real ingested movements validated
//! against the standard's own JSON Schema (`tests/vectors/epcis/`, copied unchanged from GS1),
//! and the CSV registers (BOM, RFC 4180, formula cells neutralised, roles, audit entries).

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{ADMIN_PASSWORD, RawReply, Server, raw_exchange};
use custos_protocol::epc::Epc;
use custos_protocol::uplink::{
    Batch, Direction, Event, EventBody, SIGNATURE_HEADER, SignedKind, TagSighting, signing_bytes,
};
use custos_server::domain::role::Role;
use hyper::Method;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

const TITLE: &str = "Secret title of the test carrier";
const EPC_HEX: &str = "3474257BF40000000000002A";

/// A device with its own key.
struct Dev {
    id: &'static str,
    key: Ed25519KeyPair,
}

impl Dev {
    fn new(id: &'static str) -> Dev {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Dev {
            id,
            key: Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap(),
        }
    }

    async fn send(&self, server: &Server, events: Vec<Event>) {
        let body = serde_json::to_vec(&Batch {
            device_id: self.id.into(),
            epoch: 1,
            events,
        })
        .unwrap();
        let sig = STANDARD.encode(
            self.key
                .sign(&signing_bytes(SignedKind::Batch, &body))
                .as_ref(),
        );
        let reply = raw_exchange(
            server.addr,
            Method::POST,
            &format!("/api/v1/devices/{}/batches", self.id),
            &[
                ("content-type", "application/json"),
                (SIGNATURE_HEADER, &sig),
            ],
            body,
        )
        .await;
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.bytes)
        );
    }
}

fn sighting(e: Epc, at_ms: i64) -> TagSighting {
    TagSighting {
        epc: e,
        antenna_first: 1,
        antenna_last: 3,
        reads: 6,
        peak_rssi: 190,
        first_ms: at_ms - 400,
        last_ms: at_ms,
    }
}

async fn get(server: &Server, path: &str, token: &str) -> RawReply {
    let auth = format!("Bearer {token}");
    raw_exchange(
        server.addr,
        Method::GET,
        path,
        &[("authorization", &auth)],
        vec![],
    )
    .await
}

fn text(reply: &RawReply) -> String {
    String::from_utf8(reply.bytes.to_vec()).expect("UTF-8")
}

/// A site with zones, a gate and a cabinet, one carrier (with [`TITLE`] and [`EPC_HEX`])
/// that passed the gate out and came back into the cabinet, and a sign-out of it issued.
/// The site's zone in these tests: eight hours from UTC, so a CSV time in UTC shows.
const ZONE: &str = "Asia/Shanghai";

async fn site() -> (Server, std::collections::HashMap<Role, String>) {
    let server = Server::start_with(|c| c.time_zone = ZONE.to_owned()).await;
    let tokens = server.tokens_per_role().await;
    let admin = server.login("admin", ADMIN_PASSWORD).await;
    for (id, level) in [("vault", "S"), ("street", "public")] {
        let r = server
            .call(
                Method::POST,
                "/api/v1/zones",
                Some(&admin),
                Some(json!({"id": id, "name": id, "level": level})),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
    let (gate, cab) = (Dev::new("gate-1"), Dev::new("cab-1"));
    for (dev, mut body) in [
        (
            &gate,
            json!({"kind": "gate", "inside_zone": "vault", "outside_zone": "street"}),
        ),
        (&cab, json!({"kind": "cabinet", "zone": "vault"})),
    ] {
        body["id"] = json!(dev.id);
        body["public_key"] = json!(STANDARD.encode(dev.key.public_key().as_ref()));
        let r = server
            .call(Method::POST, "/api/v1/devices", Some(&admin), Some(body))
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
    let r = server
        .call(
            Method::POST,
            "/api/v1/carriers",
            Some(&tokens[&Role::Custodian]),
            Some(json!({
                "control_no": "S-2026-0042", "kind": "paper", "level": "S", "title": TITLE,
                "owner_unit": "一处, 二科", "tags": [format!("epc:{EPC_HEX}")]
            })),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let now = server.now().unix() * 1000;
    let epc = Epc::from_hex(EPC_HEX).unwrap();
    gate.send(
        &server,
        vec![Event {
            seq: 1,
            at_ms: now - 60_000,
            body: EventBody::Passage {
                reader: "uhf-main".into(),
                direction: Direction::Out,
                tags: vec![sighting(epc, now - 60_000)],
                badges: vec![],
                local_verdict: None,
            },
        }],
    )
    .await;
    cab.send(
        &server,
        vec![Event {
            seq: 1,
            at_ms: now - 30_000,
            body: EventBody::CabinetSnapshot {
                reader: "shelves".into(),
                present: vec![epc],
                added: vec![],
                removed: vec![],
            },
        }],
    )
    .await;
    (server, tokens)
}

/// The EPC URI the export names a tag by.
fn epcis_uri(hex: &str) -> String {
    custos_server::domain::epcis::epc_uri(hex).expect("a valid EPC")
}

fn epcis_validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(include_str!("vectors/epcis/EPCIS-JSON-Schema.json"))
        .expect("the schema parses");
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the schema compiles")
}

fn assert_valid(validator: &jsonschema::Validator, doc: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "not valid EPCIS 2.0:\n{}\n{doc:#}",
        errors.join("\n")
    );
}

#[test]
fn the_schema_accepts_the_standards_example_and_refuses_a_broken_one() {
    let validator = epcis_validator();
    let mut example: Value =
        serde_json::from_str(include_str!("vectors/epcis/example-ObjectEvent.jsonld")).unwrap();
    // The example's document id is a JSON-LD blank node (`_:document1`), which is not an RFC
    // 3986 URI: with format assertions on (as the exports are checked), it is refused.
    assert!(!validator.is_valid(&example), "formats are asserted");
    example.as_object_mut().unwrap().remove("id");
    assert_valid(&validator, &example);
    let mut broken = example.clone();
    broken["epcisBody"]["eventList"][0]["action"] = json!("STEAL");
    assert!(
        !validator.is_valid(&broken),
        "the validator must catch a bad action"
    );
}

/// The EPC of the carrier [`destroy_one`] destroys.
const DESTROYED_EPC_HEX: &str = "3474257BF40000000000162E";

/// Register a second carrier and destroy it through the whole workflow (request, approval,
/// a record witnessed by an officer's person and a clerk, at `place`), and a third one
/// dispatched and delivered; the destroyed carrier's id.
async fn destroy_one(server: &Server, tokens: &std::collections::HashMap<Role, String>) -> String {
    let post = async |token: &str, path: &str, body: Value, status: u16| {
        let r = server
            .call(Method::POST, path, Some(token), Some(body))
            .await;
        assert_eq!(r.status, status, "POST {path}: {:?}", r.body);
        r.body
    };
    let (custodian, officer) = (&tokens[&Role::Custodian], &tokens[&Role::SecurityOfficer]);
    let carrier = post(
        custodian,
        "/api/v1/carriers",
        json!({"control_no": "S-2026-0099", "kind": "paper", "level": "S", "title": TITLE,
               "owner_unit": "一处", "tags": [format!("epc:{DESTROYED_EPC_HEX}")]}),
        201,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let request = post(
        custodian,
        "/api/v1/destructions",
        json!({"carrier_ids": [carrier], "method": "shred", "reason": "保管期满"}),
        201,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let approve = format!("/api/v1/destructions/{request}/approve");
    let r = server
        .call(Method::POST, &approve, Some(officer), None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let person = async |name: &str| {
        post(
            officer,
            "/api/v1/people",
            json!({"name": name, "department": "保密办", "category": "core"}),
            201,
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (wang, li) = (person("王保密").await, person("李文书").await);
    let admin = server.login("admin", ADMIN_PASSWORD).await;
    post(
        &admin,
        "/api/v1/users",
        json!({"username": "wang", "password": "temporary passphrase 1",
               "roles": ["security_officer"], "person_id": wang}),
        201,
    )
    .await;
    post(
        custodian,
        &format!("/api/v1/destructions/{request}/record"),
        json!({"witnesses": [wang, li], "at": server.now().to_string(), "count": 1,
               "place": "保密办碎纸室"}),
        200,
    )
    .await;
    // And a third carrier dispatched (sent, then delivered).
    let sent = post(
        custodian,
        "/api/v1/carriers",
        json!({"control_no": "S-2026-0100", "kind": "paper", "level": "S", "title": TITLE,
               "owner_unit": "一处", "tags": [format!("epc:{DISPATCHED_EPC_HEX}")]}),
        201,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let window = server.now().plus_secs(3600).to_string();
    let dispatch = post(
        custodian,
        "/api/v1/dispatches",
        json!({"carrier_ids": [sent], "destination": "上级机关", "courier": "机要交通员 陈",
               "sealed_by": "保管员 李", "window_until": window}),
        201,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/dispatches/{dispatch}");
    let r = server
        .call(
            Method::POST,
            &format!("{path}/approve"),
            Some(officer),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = server
        .call(Method::POST, &format!("{path}/send"), Some(custodian), None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    server.advance(60);
    post(
        custodian,
        &format!("{path}/delivered"),
        json!({"received_by": "上级机关 收发室 王"}),
        200,
    )
    .await;
    // The export's range ends before "now": let these steps' second pass.
    server.advance(1);
    carrier
}

/// The EPC of the carrier [`destroy_one`] dispatches.
const DISPATCHED_EPC_HEX: &str = "3474257BF40000000000162F";

#[tokio::test]
async fn epcis_events_validate_against_the_standard_schema_and_hold_no_title() {
    let (server, tokens) = site().await;
    destroy_one(&server, &tokens).await;
    let validator = epcis_validator();
    for role in [Role::Auditor, Role::SecurityOfficer] {
        let reply = get(&server, "/api/v1/epcis/events", &tokens[&role]).await;
        assert_eq!(reply.status, 200, "{role:?}: {}", text(&reply));
        assert_eq!(reply.headers["content-type"], "application/ld+json");
        let body = text(&reply);
        assert!(!body.contains(TITLE), "a title leaked into EPCIS");
        let doc: Value = serde_json::from_str(&body).unwrap();
        assert_valid(&validator, &doc);
        let events = doc["epcisBody"]["eventList"].as_array().unwrap();
        let steps: Vec<&str> = events
            .iter()
            .filter_map(|e| e["bizStep"].as_str())
            .collect();
        assert!(steps.contains(&"entering_exiting"), "{steps:?}");
        assert!(steps.contains(&"storing"), "{steps:?}");
        let exit = events
            .iter()
            .find(|e| e["bizStep"] == "entering_exiting")
            .unwrap();
        assert_eq!(exit["disposition"], "in_transit");
        assert_eq!(exit["readPoint"]["id"], "urn:custos:device:gate-1");
        assert_eq!(exit["bizLocation"]["id"], "urn:custos:zone:street");
        let epc = exit["epcList"][0].as_str().unwrap();
        assert!(epc.starts_with("urn:epc:id:giai:"), "{epc}");
        // The destruction: one DELETE with the CBV's destroying words, naming the destroyed
        // carrier's (retired) tag.
        let destroyed: Vec<&Value> = events
            .iter()
            .filter(|e| e["bizStep"] == "destroying")
            .collect();
        assert_eq!(destroyed.len(), 1, "{events:#?}");
        assert_eq!(destroyed[0]["action"], "DELETE");
        assert_eq!(destroyed[0]["disposition"], "destroyed");
        let gone = epcis_uri(DESTROYED_EPC_HEX);
        assert_eq!(destroyed[0]["epcList"], json!([gone]));
        assert!(
            events
                .iter()
                .filter(|e| e["bizStep"] != "destroying")
                .all(|e| e["action"] == "OBSERVE")
        );
        // The dispatch: shipped (in transit), then received at its destination.
        let moved = json!([epcis_uri(DISPATCHED_EPC_HEX)]);
        let steps: Vec<(&Value, &Value)> = events
            .iter()
            .filter(|e| e["epcList"] == moved)
            .map(|e| (&e["bizStep"], &e["disposition"]))
            .collect();
        assert_eq!(
            steps,
            [
                (&json!("shipping"), &json!("in_transit")),
                (&json!("receiving"), &json!("in_progress"))
            ],
            "{events:#?}"
        );
    }
    // A range with nothing in it is still a valid document.
    let reply = get(
        &server,
        "/api/v1/epcis/events?from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z",
        &tokens[&Role::Auditor],
    )
    .await;
    assert_eq!(reply.status, 200);
    let doc: Value = serde_json::from_slice(&reply.bytes).unwrap();
    assert_valid(&validator, &doc);
    assert_eq!(doc["epcisBody"]["eventList"], json!([]));

    let reply = get(
        &server,
        "/api/v1/epcis/events?from=2001-01-01T00:00:00Z&to=2000-01-01T00:00:00Z",
        &tokens[&Role::Auditor],
    )
    .await;
    assert_eq!(reply.status, 200, "from after to is an empty range");
    let doc: Value = serde_json::from_slice(&reply.bytes).unwrap();
    assert_eq!(doc["epcisBody"]["eventList"], json!([]));
    let reply = get(
        &server,
        "/api/v1/epcis/events?from=yesterday",
        &tokens[&Role::Auditor],
    )
    .await;
    assert_eq!(reply.status, 400, "a malformed time");
    for role in [Role::Guard, Role::Custodian, Role::Admin] {
        let reply = get(&server, "/api/v1/epcis/events", &tokens[&role]).await;
        assert_eq!(reply.status, 403, "{role:?}");
    }
    let exports: i64 = server
        .state
        .store()
        .read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM audit WHERE action = 'export.epcis'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(
        exports, 4,
        "every export is audited (the empty inverted range too)"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn csv_exports_open_in_excel_quote_per_rfc_4180_and_neutralise_formulas() {
    let (server, tokens) = site().await;
    let officer = &tokens[&Role::SecurityOfficer];
    let r = server
        .call(
            Method::POST,
            "/api/v1/people",
            Some(officer),
            Some(json!({"name": "=HYPERLINK(\"http://x\",\"y\")", "department": "保密办", "category": "general"})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);

    let reply = get(
        &server,
        "/api/v1/export/carriers.csv",
        &tokens[&Role::Custodian],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", text(&reply));
    assert_eq!(reply.headers["content-type"], "text/csv; charset=utf-8");
    assert!(
        reply.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("carriers.csv")
    );
    let body = text(&reply);
    assert!(body.starts_with('\u{feff}'), "a BOM for Excel");
    assert!(
        body.starts_with("\u{feff}id,control_no,kind,level,title,"),
        "{body}"
    );
    assert!(
        body.contains(TITLE),
        "the register shows titles to custodians"
    );
    assert!(body.contains("\"一处, 二科\""), "a comma is quoted: {body}");
    assert!(body.ends_with("\r\n"));
    // Times are written like the pages write them, in the site's zone.
    let shown = server
        .call(
            Method::GET,
            "/api/v1/carriers",
            Some(&tokens[&Role::Custodian]),
            None,
        )
        .await;
    let created: custos_server::domain::time::Timestamp = shown.body[0]["created_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let local = custos_server::domain::datetime::format(
        custos_server::domain::datetime::Style::Numeric,
        &jiff::tz::TimeZone::get(ZONE).unwrap(),
        created,
    );
    let records = custos_server::domain::csv::parse(&body).unwrap();
    let at = records[0]
        .fields
        .iter()
        .position(|h| h == "created_at")
        .unwrap();
    assert_eq!(records[1].fields[at], local, "created_at in Beijing time");
    assert_ne!(local, created.to_string());

    let reply = get(&server, "/api/v1/export/people.csv", officer).await;
    assert_eq!(reply.status, 200);
    let body = text(&reply);
    assert!(
        body.contains("\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""),
        "a formula is neutralised and quotes doubled: {body}"
    );
    assert!(body.contains("保密办"));

    for (path, role) in [
        ("signouts", Role::Custodian),
        ("alerts", Role::SecurityOfficer),
        ("audit", Role::Auditor),
    ] {
        let reply = get(
            &server,
            &format!("/api/v1/export/{path}.csv"),
            &tokens[&role],
        )
        .await;
        assert_eq!(reply.status, 200, "{path}: {}", text(&reply));
        assert!(text(&reply).starts_with("\u{feff}id,"), "{path}");
    }
    let audit = text(&get(&server, "/api/v1/export/audit.csv", &tokens[&Role::Auditor]).await);
    assert!(
        audit.contains("export.carriers"),
        "exports are on the trail"
    );
    assert!(!audit.contains(TITLE), "no title in the audit trail");
    let trail = custos_server::domain::csv::parse(&audit).unwrap();
    assert_eq!(trail[0].fields[1], "at");
    for entry in &trail[1..] {
        let at = &entry.fields[1];
        assert!(
            at.len() == 19 && at.as_bytes()[10] == b' ' && !at.ends_with('Z'),
            "an audit time in the site's format: {at:?}"
        );
    }

    for (path, role) in [
        ("carriers", Role::Guard),
        ("carriers", Role::Auditor),
        ("people", Role::Guard),
        ("audit", Role::SecurityOfficer),
        ("alerts", Role::Auditor),
    ] {
        let reply = get(
            &server,
            &format!("/api/v1/export/{path}.csv"),
            &tokens[&role],
        )
        .await;
        assert_eq!(reply.status, 403, "{path} as {role:?}");
    }
    server.stop().await.unwrap();
}

async fn post_csv(server: &Server, path: &str, token: &str, csv: &str) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let reply = raw_exchange(
        server.addr,
        Method::POST,
        path,
        &[("authorization", &auth), ("content-type", "text/csv")],
        csv.as_bytes().to_vec(),
    )
    .await;
    let body = serde_json::from_slice(&reply.bytes)
        .unwrap_or_else(|_| panic!("JSON answer: {}", String::from_utf8_lossy(&reply.bytes)));
    (reply.status, body)
}

/// `(line, column)` of every problem in a report.
fn problems(report: &Value) -> Vec<(u64, String)> {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["line"].as_u64().unwrap(),
                p["column"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_people_import_lists_every_problem_then_commits_all_or_nothing() {
    let server = Server::start().await;
    let tokens = server.tokens_per_role().await;
    let officer = &tokens[&Role::SecurityOfficer];
    let before = server.rows("people").await;
    let bad = "\u{feff}name,department,category,badge_tag,training_valid_until\r\n\
               张三,一处,core,B-1,2030-01-01\r\n\
               李四,一处,boss,,\r\n\
               王五,,general,B-1,2030-02-30\r\n\
               \"'=赵六\",二处,general,,\r\n";
    let (status, report) = post_csv(&server, "/api/v1/import/people", officer, bad).await;
    assert_eq!(status, 200, "a dry run answers its report: {report}");
    assert_eq!(report["committed"], false);
    assert_eq!(report["rows"], 4);
    let found = problems(&report);
    assert!(
        found.iter().any(|(l, _)| *l == 3),
        "bad category: {found:?}"
    );
    assert!(
        found.contains(&(4, "badge_tag".to_owned())),
        "repeated badge: {found:?}"
    );
    assert!(
        found.iter().filter(|(l, _)| *l == 4).count() >= 2,
        "every problem of row 4: {found:?}"
    );
    assert!(
        !found.iter().any(|(l, _)| *l == 2 || *l == 5),
        "good rows: {found:?}"
    );
    assert_eq!(
        server.rows("people").await,
        before,
        "a dry run keeps nothing"
    );

    let (status, report) =
        post_csv(&server, "/api/v1/import/people?commit=true", officer, bad).await;
    assert_eq!(status, 422, "{report}");
    assert_eq!(report["error"], "import_refused");
    assert_eq!(
        server.rows("people").await,
        before,
        "a refused commit keeps nothing"
    );

    let good = "name,department,category,badge_tag\n张三,一处,core,B-1\n\"'=赵六\",二处,general,\n";
    let (status, report) =
        post_csv(&server, "/api/v1/import/people?commit=true", officer, good).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["committed"], true);
    assert_eq!(report["ids"].as_array().unwrap().len(), 2);
    assert_eq!(server.rows("people").await, before + 2);
    let exported = text(&get(&server, "/api/v1/export/people.csv", officer).await);
    assert!(
        exported.contains("'=赵六"),
        "neutralised again on the way out"
    );
    // The same file again: the badge is now taken in the database.
    let (status, report) = post_csv(&server, "/api/v1/import/people", officer, good).await;
    assert_eq!(status, 200);
    assert_eq!(problems(&report), [(2, "badge_tag".to_owned())], "{report}");

    let (status, _) = post_csv(
        &server,
        "/api/v1/import/people",
        &tokens[&Role::Custodian],
        good,
    )
    .await;
    assert_eq!(status, 403);
    let (status, report) = post_csv(
        &server,
        "/api/v1/import/people",
        officer,
        "nmae,department\nx,y\n",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        problems(&report),
        [
            (1, "nmae".to_owned()),
            (1, "name".to_owned()),
            (1, "category".to_owned())
        ]
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_exported_register_imports_into_a_new_site_and_duplicates_are_named() {
    let (server, tokens) = site().await;
    let custodian = &tokens[&Role::Custodian];
    let exported = text(&get(&server, "/api/v1/export/carriers.csv", custodian).await);
    // Into the same site: every control number and tag is taken.
    let (status, report) = post_csv(&server, "/api/v1/import/carriers", custodian, &exported).await;
    assert_eq!(status, 200, "{report}");
    assert!(
        problems(&report).contains(&(2, "control_no".to_owned())),
        "{report}"
    );
    // Into a fresh site: it loads as it is.
    let other = Server::start().await;
    let other_tokens = other.tokens_per_role().await;
    let other_custodian = &other_tokens[&Role::Custodian];
    let (status, report) = post_csv(
        &other,
        "/api/v1/import/carriers",
        other_custodian,
        &exported,
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["problems"], json!([]), "{report}");
    assert_eq!(other.rows("carriers").await, 0, "still a dry run");
    let (status, report) = post_csv(
        &other,
        "/api/v1/import/carriers?commit=true",
        other_custodian,
        &exported,
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(other.rows("carriers").await, 1);
    let again = text(&get(&other, "/api/v1/export/carriers.csv", other_custodian).await);
    assert!(again.contains(TITLE) && again.contains(EPC_HEX), "{again}");

    let mixed = "control_no,kind,level,title,owner_unit,tags\n\
                 N-1,paper,S,一份,一处,barcode:N1\n\
                 N-2,scroll,Q,二份,一处,\n\
                 N-1,paper,C,三份,一处,barcode:N1\n";
    let (status, report) = post_csv(
        &other,
        "/api/v1/import/carriers?commit=true",
        other_custodian,
        mixed,
    )
    .await;
    assert_eq!(status, 422, "{report}");
    let found = problems(&report);
    assert!(
        found.contains(&(3, "kind".to_owned())) && found.contains(&(3, "level".to_owned())),
        "{found:?}"
    );
    assert!(
        found.contains(&(4, "control_no".to_owned())) && found.contains(&(4, "tags".to_owned())),
        "{found:?}"
    );
    assert_eq!(
        other.rows("carriers").await,
        1,
        "all or nothing: N-1 was not kept"
    );
    let (status, _) = post_csv(
        &other,
        "/api/v1/import/carriers",
        &other_tokens[&Role::Guard],
        mixed,
    )
    .await;
    assert_eq!(status, 403);
    other.stop().await.unwrap();
    server.stop().await.unwrap();
}
