//! The OpenAPI document of `/api/v1`, generated from the code and served at
//! `GET /api/v1/openapi.json` (no authentication).
//!
//! # Why it cannot drift
//! The API router ([`super::api_routes`]) is built with `utoipa_axum`'s
//! `OpenApiRouter::routes(routes!(handler, ...))`: the method and path that route a request are
//! the ones the handler's own `#[utoipa::path(...)]` declares, and that same declaration is
//! what [`document`] lists. A handler cannot be served without being documented, nor documented
//! at a path or method it is not served at. Request and response bodies are the handlers' own
//! types, whose `ToSchema` derives sit next to their `serde` derives; types with hand-written
//! `serde` (ids, times, roles) write their schema by hand next to it.
//!
//! The device messages are defined in `custos_protocol::uplink`, a crate without I/O or
//! OpenAPI dependencies; [`wire`] mirrors them for the document, and the tests check the
//! mirror against serialised protocol values of every variant.
//!
//! Tests (`server/tests/openapi.rs`): the document parses as OpenAPI 3.x, every `$ref`
//! resolves, every documented operation answers something other than 404/405 on the live
//! router, live answers validate against their documented schemas, and the mirror matches.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::ErrorBody;

/// The document's fixed parts; [`super::api_routes`] adds the paths and their schemas.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Custos",
        description = "The Custos system of record: carriers (秘密载体), sign-outs, people, \
                       devices, alerts and the audit trail. Every error answer is an \
                       `ErrorBody`. Any request that writes may answer 507 `storage_full` when the \
                       server's disk is full: nothing of it was stored; send it again once \
                       space is freed. Times are RFC 3339 UTC strings; ids are strings."
    ),
    modifiers(&Security),
    components(schemas(ErrorBody)),
    tags(
        (name = "session", description = "Log in and out"),
        (name = "admin", description = "Accounts, zones and devices (administrator)"),
        (name = "people", description = "The register of people (涉密人员)"),
        (name = "carriers", description = "Carriers, their tags and histories"),
        (name = "signouts", description = "Sign-outs: request, approve, issue, return"),
        (name = "requests", description = "Copies, destructions, reclassifications: request, approve or reject, carry out"),
        (name = "alerts", description = "Alerts and their live stream"),
        (name = "moves", description = "Stocktakes (清点), year-end collections (年底收缴), retention (保管期限)"),
        (name = "audit", description = "The hash-chained audit trail (auditor)"),
        (name = "devices", description = "Signed device endpoints (Ed25519, no session)"),
        (name = "meta", description = "This document"),
        (name = "exports", description = "EPCIS 2.0 events, CSV exports and imports"),
    )
)]
pub struct ApiDoc;

/// Security scheme names used by the handlers' `security(...)`.
pub const BEARER: &str = "bearer";
/// The browser session cookie (state changes also need `x-csrf-token`).
pub const COOKIE: &str = "session_cookie";
/// A device's Ed25519 signature header.
pub const DEVICE: &str = "device_signature";

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The `token` of `POST /api/v1/session`."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            COOKIE,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::api::auth::SESSION_COOKIE,
                "The session cookie set at login. Requests other than GET, HEAD and OPTIONS \
                 must also send the login's `csrf_token` in the `x-csrf-token` header.",
            ))),
        );
        components.add_security_scheme(
            DEVICE,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                custos_protocol::uplink::SIGNATURE_HEADER,
                "Standard base64 of the device's Ed25519 signature over \
                 `\"custos-uplink-v1\" 0x00 KIND 0x00 BODY` (KIND `batch`, `heartbeat` or \
                 `policy_request`; BODY the exact request bytes), with the key registered at \
                 `POST /api/v1/devices`. Answers carry the server's signature in the same \
                 header (KIND `ack`, `heartbeat_ack`, `policy`).",
            ))),
        );
    }
}

/// The document, built once from the routes.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOCUMENT: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let (_, api) = utoipa_axum::router::OpenApiRouter::with_openapi(ApiDoc::openapi())
            .nest(super::BASE_PATH, super::api_routes())
            .split_for_parts();
        let mut api = api;
        // `carrier_ids` or `from_unit`, never both (and one of them).
        one_of_two(&mut api, "NewTransfer", ("carrier_ids", true), "from_unit");
        // `person_id` or `new_person`, never both (or neither).
        one_of_two(&mut api, "CreateUser", ("new_person", false), "person_id");
        api
    })
}

/// Replace the object schema `name` by a `oneOf` of two objects: one with `first` (required
/// if `.1`) and without `second`, one with `second` required and without `first`; no other
/// keys (the bodies deny unknown fields). What derive cannot say: two keys that exclude
/// each other, checked by the service.
fn one_of_two(api: &mut utoipa::openapi::OpenApi, name: &str, first: (&str, bool), second: &str) {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{AdditionalProperties, OneOfBuilder, Schema};
    let Some(RefOr::T(Schema::Object(object))) =
        api.components.as_ref().and_then(|c| c.schemas.get(name))
    else {
        // A renamed or reshaped schema must not silently lose its constraint: this runs once,
        // when the document is first built, so every test that reads the document fails here.
        panic!("one_of_two: no object schema {name:?} in the OpenAPI components");
    };
    let object = object.clone();
    let variant = |keep: &str, drop: &str, required: bool| {
        let mut v = object.clone();
        v.properties.remove(drop);
        v.required.retain(|r| r != drop);
        if required && !v.required.iter().any(|r| r == keep) {
            v.required.push(keep.to_owned());
        }
        v.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
        v.description = None;
        v
    };
    let one_of = OneOfBuilder::new()
        .item(variant(first.0, second, first.1))
        .item(variant(second, first.0, true))
        .description(object.description.clone())
        .build();
    if let Some(components) = api.components.as_mut() {
        components
            .schemas
            .insert(name.to_owned(), RefOr::T(Schema::OneOf(one_of)));
    }
}

/// The document as JSON text.
fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        // Serialising a tree of plain maps, strings and numbers cannot fail.
        document()
            .to_pretty_json()
            .expect("the OpenAPI document serialises")
    })
}

/// This document.
#[utoipa::path(
    get,
    operation_id = "openapi_serve",
    path = "/openapi.json",
    tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI document of this API", content_type = "application/json", body = Object)
    )
)]
pub async fn serve() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_json(),
    )
}

/// Error answers shared by the endpoints that need a session.
#[derive(utoipa::IntoResponses)]
pub enum SessionRefusals {
    /// No session, or an expired one (`unauthenticated`).
    #[response(status = 401)]
    Unauthenticated(ErrorBody),
    /// The session lacks the role (`forbidden`), a cookie session sent a change without
    /// `x-csrf-token` (`csrf`), or the account must change its password first
    /// (`password_change_required`: a new account, or one whose password an administrator
    /// reset; only `POST /session/password` and `DELETE /session` are answered until then).
    #[response(status = 403)]
    Forbidden(ErrorBody),
}

/// Error answers shared by the endpoints that take a JSON body or a query.
#[derive(utoipa::IntoResponses)]
pub enum InputRefusals {
    /// Malformed JSON, unknown fields, wrong types or values out of range (`bad_request`).
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// The body is larger than the configured limit (`payload_too_large`).
    #[response(status = 413)]
    PayloadTooLarge(ErrorBody),
    /// The body is not `application/json` (`unsupported_media_type`).
    #[response(status = 415)]
    UnsupportedMediaType(ErrorBody),
}

/// The answer for an unknown id (ids that are not numbers cannot exist either).
#[derive(utoipa::IntoResponses)]
pub enum Unknown {
    /// No such resource (`not_found`).
    #[response(status = 404)]
    NotFound(ErrorBody),
}

/// Error answers of the signed device endpoints.
#[derive(utoipa::IntoResponses)]
pub enum DeviceRefusals {
    /// Signed, but malformed: bad JSON, unknown fields, a body naming another device, or
    /// breaking the protocol's limits (`bad_request`). Raises `device_auth_failed`.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// Unknown device, missing or bad signature, deliberately not distinguished
    /// (`device_auth_failed`). Raises `device_auth_failed`.
    #[response(status = 401)]
    Unauthenticated(ErrorBody),
    /// The body is over 1 MiB (`payload_too_large`).
    #[response(status = 413)]
    PayloadTooLarge(ErrorBody),
    /// Too many failed (401/400) requests from this source address lately
    /// (`too_many_failures`): refused before any other check; `Retry-After` says when to try
    /// again.
    #[response(status = 429, headers(("retry-after" = u64, description = "Seconds until a request is heard again")))]
    TooManyFailures(ErrorBody),
}

/// Mirrors of the `custos_protocol::uplink` messages (see that module for the rules each
/// field obeys), for the document only. Field names, `serde` attributes and variants are the
/// protocol's; the tests serialise protocol values of every variant and check them against
/// these schemas.
pub mod wire {
    #![allow(dead_code)] // Only their schemas are used.

    use utoipa::ToSchema;

    /// An EPC: upper-case hex, an even number of digits, at most 62 bytes.
    #[derive(ToSchema)]
    #[schema(value_type = String, pattern = "^([0-9A-F]{2}){0,62}$", example = "3474257BF40000000000162E")]
    pub struct Epc(String);

    /// Signed by the device: a run of consecutive events from its outbox.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Batch {
        /// The device as registered (must equal the path id).
        device_id: String,
        /// The device's boot epoch.
        epoch: u64,
        /// 1 to 256 events with consecutive seqs, oldest first.
        events: Vec<Event>,
    }

    /// One outbox event.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Event {
        /// Per device and epoch: starts at 1, +1 per event.
        seq: u64,
        /// When it happened, Unix milliseconds.
        at_ms: i64,
        /// What happened.
        body: EventBody,
    }

    /// What an event reports.
    #[derive(ToSchema)]
    #[serde(tag = "type", rename_all = "snake_case")]
    pub enum EventBody {
        /// Someone went through a gate.
        Passage {
            /// The gate's reader name.
            reader: String,
            /// The direction of travel.
            direction: Direction,
            /// Carrier tags read.
            tags: Vec<TagSighting>,
            /// Staff badges read.
            badges: Vec<TagSighting>,
            /// What the daemon decided on its own, if it had to.
            local_verdict: Option<LocalVerdict>,
        },
        /// A cabinet inventory.
        CabinetSnapshot {
            /// The cabinet's reader name.
            reader: String,
            /// Every tag present now.
            present: Vec<Epc>,
            /// Tags new since the previous snapshot.
            added: Vec<Epc>,
            /// Tags gone since the previous snapshot.
            removed: Vec<Epc>,
        },
        /// A barcode or EM card presented at a desk.
        Scan {
            /// The reader name.
            reader: String,
            /// What was read.
            code: ScannedCode,
        },
        /// A reader's health changed.
        ReaderHealth {
            /// The reader name.
            reader: String,
            /// Its health now.
            health: ReaderHealth,
        },
        /// Carriers of an earlier passage of this epoch went back where they came from.
        TurnedBack {
            /// The gate's reader name.
            reader: String,
            /// The seq of that passage event (same epoch, earlier).
            passage_seq: u64,
            /// Its carrier tags that went back.
            tags: Vec<Epc>,
        },
        /// The daemon itself has a problem.
        DeviceFault {
            /// What kind of problem.
            kind: DeviceFaultKind,
            /// Detail (at most 1024 characters).
            detail: String,
        },
    }

    /// The direction of a passage.
    #[derive(ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum Direction {
        /// Into the secure area.
        In,
        /// Out of the secure area.
        Out,
    }

    /// One tag as seen during a passage.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct TagSighting {
        /// The tag.
        epc: Epc,
        /// Antenna (1-based) of the first read.
        antenna_first: u8,
        /// Antenna (1-based) of the last read.
        antenna_last: u8,
        /// How many reads.
        reads: u32,
        /// The strongest RSSI, raw.
        peak_rssi: u8,
        /// The first read, Unix ms.
        first_ms: i64,
        /// The last read, Unix ms.
        last_ms: i64,
    }

    /// What the daemon decided on its own with its cached policy.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct LocalVerdict {
        /// Whether it sounded the alarm.
        alarm: bool,
        /// The policy version it used (0 = none).
        policy_version: u64,
        /// Why it alarmed; null exactly when `alarm` is false.
        reason: Option<AlarmReason>,
    }

    /// A code read at a desk.
    #[derive(ToSchema)]
    #[serde(tag = "type", rename_all = "snake_case")]
    pub enum ScannedCode {
        /// A barcode's text.
        Barcode {
            /// The text.
            text: String,
        },
        /// An EM4100 card: 10 upper-case hex digits.
        EmCard {
            /// The card id.
            id: String,
        },
    }

    /// What kind of problem the daemon has (unknown values read as `other`).
    #[derive(ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum DeviceFaultKind {
        /// The outbox is full.
        OutboxFull,
        /// The outbox database failed.
        StorageError,
        /// The gate I/O link is lost.
        GateIoLost,
        /// The wall clock stepped.
        ClockStep,
        /// The cached gate policy expired.
        PolicyExpired,
        /// Anything else.
        Other,
    }

    /// The health of one reader.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct ReaderHealth {
        /// The overall state.
        state: HealthState,
        /// The current fault, if not `ok`.
        fault: Option<ReaderFault>,
        /// Frames decoded.
        frames_ok: u64,
        /// Frames with a bad checksum.
        checksum_errors: u64,
        /// Bytes dropped while resynchronising.
        dropped_bytes: u64,
        /// The last tag read, Unix ms.
        last_read_ms: Option<i64>,
    }

    /// A reader's overall state.
    #[derive(ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum HealthState {
        /// Reading normally.
        Ok,
        /// Reading, with errors.
        Degraded,
        /// Not usable.
        Fault,
    }

    /// Why a reader is degraded or faulty.
    #[derive(ToSchema)]
    #[serde(tag = "type", rename_all = "snake_case")]
    pub enum ReaderFault {
        /// No answer to commands.
        NoReply,
        /// The serial link is gone.
        SerialLost,
        /// An antenna is disconnected.
        AntennaMissing {
            /// The antenna (1-based).
            antenna: u8,
        },
        /// Anything else.
        Other {
            /// What.
            detail: String,
        },
    }

    /// A reader's health, named.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct NamedHealth {
        /// The reader name.
        reader: String,
        /// Its health.
        health: ReaderHealth,
    }

    /// Signed by the device: alive, and the state of its readers.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Heartbeat {
        /// The device.
        device_id: String,
        /// Its boot epoch.
        epoch: u64,
        /// Strictly increasing within the epoch.
        hb_seq: u64,
        /// When sent, Unix ms.
        at_ms: i64,
        /// Every configured reader.
        readers: Vec<NamedHealth>,
        /// Events not yet acknowledged.
        outbox_depth: u64,
        /// The policy version held (0 = none).
        policy_version: u64,
        /// The daemon's own faults standing now; left out when there are none.
        #[serde(default)]
        faults: Vec<DeviceFault>,
    }

    /// A fault of the daemon itself, standing when the heartbeat was sent.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct DeviceFault {
        /// What kind of problem.
        kind: DeviceFaultKind,
        /// When the daemon raised it, Unix ms.
        since_ms: i64,
        /// Detail (at most 1024 characters).
        detail: String,
    }

    /// Signed by the device: "send me my current gate policy".
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct PolicyRequest {
        /// The device.
        device_id: String,
        /// Its boot epoch.
        epoch: u64,
        /// When sent, Unix ms.
        at_ms: i64,
        /// The version held (0 = none).
        have_version: u64,
    }

    /// Signed by the server: which events are stored, and the verdicts.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct BatchAck {
        /// The device.
        device_id: String,
        /// The batch's epoch.
        epoch: u64,
        /// Every seq up to this one in the epoch is durably stored.
        acked_through: u64,
        /// A verdict for each judged passage.
        verdicts: Vec<Verdict>,
        /// What the device should do now.
        directives: Vec<Directive>,
        /// The newest gate policy version for the device.
        policy_version: u64,
    }

    /// The verdict on one passage.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Verdict {
        /// The passage's seq.
        seq: u64,
        /// The decision.
        outcome: Outcome,
    }

    /// The decision on a passage.
    #[derive(ToSchema)]
    #[serde(tag = "type", rename_all = "snake_case")]
    pub enum Outcome {
        /// Nothing wrong.
        Allowed,
        /// Alarm.
        Alarm {
            /// Why.
            reason: AlarmReason,
            /// The alert raised, if any.
            alert_id: Option<String>,
        },
    }

    /// Why a passage alarms (unknown values read as `other`).
    #[derive(ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum AlarmReason {
        /// Leaving without a sign-out that allows it.
        UnauthorizedRemoval,
        /// The carrier's level is above the person's clearance.
        ClearanceViolation,
        /// The tag is not registered.
        UnknownTag,
        /// The tag cannot be where it was seen.
        TagCloneSuspected,
        /// The sign-out's time is over.
        SignoutExpired,
        /// None of the borrowers' badges was read.
        BorrowerAbsent,
        /// No badge at all was read, and the carrier's level requires its borrower's badge at
        /// gates (`[gate] badge_required`, default TS and S).
        BadgeMissing,
        /// The daemon's policy expired.
        PolicyExpired,
        /// The daemon's clock is untrustworthy.
        ClockUntrusted,
        /// The daemon has no policy.
        NoPolicy,
        /// A reason this version does not know.
        Other,
    }

    /// Something the server asks the device to do.
    #[derive(ToSchema)]
    #[serde(tag = "type", rename_all = "snake_case")]
    pub enum Directive {
        /// Sound the alarm.
        SoundAlarm {
            /// For how long, ms.
            duration_ms: u64,
            /// Also lock the door.
            lock_door: bool,
            /// The alert it is for.
            alert_id: Option<String>,
        },
        /// Stop the alarm sounded for an alert.
        SilenceAlarm {
            /// The alert.
            alert_id: String,
        },
        /// Fetch the gate policy again.
        RefreshPolicy,
    }

    /// Signed by the server: the heartbeat is recorded.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct HeartbeatAck {
        /// The device.
        device_id: String,
        /// The heartbeat's epoch.
        epoch: u64,
        /// The heartbeat's number.
        hb_seq: u64,
        /// The newest gate policy version for the device.
        policy_version: u64,
        /// What the device should do now.
        directives: Vec<Directive>,
    }

    /// Signed by the server: what a gate may let out while it cannot reach the server.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct GatePolicy {
        /// The gate.
        device_id: String,
        /// Grows when the contents change.
        version: u64,
        /// Issued at, Unix ms.
        issued_at_ms: i64,
        /// Valid until, Unix ms.
        valid_until_ms: i64,
        /// The carriers that may leave, and until when.
        allowed: Vec<AllowedCarrier>,
        /// Every staff badge the server knows: such a tag is a person, never a carrier.
        badges: Vec<Epc>,
    }

    /// A carrier a gate may let out.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct AllowedCarrier {
        /// Its tag.
        epc: Epc,
        /// Until when, Unix ms.
        until_ms: i64,
        /// Badges of its borrowers (one must be read with it, if any are listed and badges were
        /// read).
        borrower_badges: Vec<Epc>,
        /// One of `borrower_badges` must be read, even when no badge at all was read (the
        /// carrier's level is in the server's `[gate] badge_required`). Absent = `false`.
        #[serde(default)]
        badge_required: bool,
    }
}
