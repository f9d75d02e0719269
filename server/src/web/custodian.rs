//! The custodian's register pages (保管员): the carrier register and its search, registering
//! a carrier (with the proposed GIAI-96 EPC and the label), a carrier's page with its tags,
//! history and printable label, and the cabinet counts (清点). The scan desk and sign-out
//! requests are in [`super::desk`].
//!
//! Every handler calls the use case the API handler calls, with the same capability:
//! [`CustodianDesk`] is the custodian's capability plus the read capability of the register of
//! people, which every custodian also holds; [`CustodyReader`] (custodian or security
//! officer) opens a carrier's page and label, as `GET /api/v1/carriers/{id}` does.
//!
//! # Titles
//! A carrier's title is shown on the register list and the carrier's page only (custodians
//! and security officers, who may read it, as through the API). It is never put on a label:
//! labels are seen by anyone who handles the carrier ([`super::label`]).

use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use custos_protocol::barcode::CarrierLabel;
use custos_protocol::epc::tds;
use maud::{Markup, html};

use super::form::{FormData, encode};
use super::i18n::{self, Key, Lang, t};
use super::label::{LabelFacts, label_svg};
use super::layout::{self, csrf_field, field_error, form_errors, invalid};
use super::replay::{self, Claim};
use super::session::{Page, WebError, WebForm, WebSession, see_other};
use crate::AppState;
use crate::api::error::ApiError;
use crate::auth::capability::CustodyReader;
use crate::auth::capability::{CustodianCap, PeopleReaderCap};
use crate::domain::carrier::{
    CarrierInputError, CarrierKind, CarrierRuleError, CarrierState, RegistrationError,
    level_from_code,
};
use crate::domain::ids::{CarrierId, DeviceId};
use crate::domain::level::Level;
use crate::domain::role::Role;
use crate::domain::time::Timestamp;
use crate::service::ServiceError;
use crate::service::cabinets::{self, CabinetContents};
use crate::service::carriers::{self, CarrierRegistration};
use crate::store::carriers::{CarrierSummary, HistoryItem, ShelfCarrier};
use crate::store::devices::CabinetRow;

/// Field errors of a form: (field name, message).
pub(super) type Errors = Vec<(&'static str, Key)>;

/// GIAI-96 filter value of carrier tags (TDS: 0, "all others").
pub const EPC_FILTER: u8 = 0;

/// A custodian, with the read capability of the register of people that the custodian's
/// pages also need (borrowers). Every custodian holds both; the custodian check runs first, so
/// the roles are exactly [`CustodianDesk::ROLES`].
#[derive(Debug, Clone)]
pub struct CustodianDesk {
    /// The custodian capability.
    pub cap: CustodianCap,
    /// Reading the register of people.
    pub people: PeopleReaderCap,
}

impl CustodianDesk {
    /// The roles that open the custodian's pages.
    pub const ROLES: &'static [Role] = CustodianCap::ROLES;

    /// The custody reader (carriers, sign-outs, histories) of this custodian.
    pub fn reader(&self) -> CustodyReader {
        CustodyReader::Custodian(self.cap.clone())
    }
}

impl FromRequestParts<AppState> for CustodianDesk {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let cap = CustodianCap::from_request_parts(parts, state).await?;
        let people = PeopleReaderCap::from_request_parts(parts, state).await?;
        Ok(CustodianDesk { cap, people })
    }
}

// ---------------------------------------------------------------------------------------
// Shared pieces (also used by the desk and the security officer's pages)

/// The query string of the page as a form.
pub(super) fn query(session: &WebSession) -> FormData {
    let query = session.path().split_once('?').map_or("", |(_, q)| q);
    FormData::parse(query.as_bytes()).unwrap_or_default()
}

/// A level as `<span class="level" data-level=CODE>`.
pub(super) fn level_tag(lang: Lang, level: Level) -> Markup {
    html! { span.level data-level=(level.code()) { (t(lang, i18n::level(level))) } }
}

/// A whole page of the custody pages.
pub(super) fn frame(
    session: &WebSession,
    title: &str,
    body_class: &str,
    content: Markup,
) -> Markup {
    layout::page(
        session.lang,
        Some(session),
        session.path(),
        title,
        body_class,
        content,
    )
}

/// A 404 page in the frame.
pub(super) fn not_found(session: &WebSession, body: Key) -> Response {
    let lang = session.lang;
    let page = layout::message_page(lang, Some(session), Key::NotFoundTitle, t(lang, body));
    (StatusCode::NOT_FOUND, page).into_response()
}

/// A carrier's control number linked to its page.
pub(super) fn carrier_link(id: CarrierId, control_no: &str) -> Markup {
    html! { a.carrier-no href={ "/carriers/" (id) } { (control_no) } }
}

/// An optional time, or "never".
pub(super) fn maybe_time(lang: Lang, at: Option<Timestamp>) -> Markup {
    match at {
        Some(at) => layout::time(at),
        None => html! { span.empty { (t(lang, Key::Never)) } },
    }
}

fn state_tag(lang: Lang, state: CarrierState) -> Markup {
    html! { span.carrier-state data-state=(state.as_str()) { (t(lang, i18n::carrier_state(state))) } }
}

// ---------------------------------------------------------------------------------------
// The register

// The register list itself is in [`super::lists`].

// ---------------------------------------------------------------------------------------
// Registration

/// What the registration form shows: the typed values and the errors.
#[derive(Debug, Default)]
struct CarrierForm {
    control_no: String,
    kind: String,
    level: String,
    title: String,
    copy_no: String,
    copies: String,
    owner_unit: String,
    home_device: String,
    tags: String,
    secrecy_years: String,
    nonce: String,
    errors: Errors,
}

fn number(text: &str) -> Result<Option<u32>, ()> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<u32>().map(Some).map_err(|_| ())
}

impl CarrierForm {
    fn from(form: &FormData) -> CarrierForm {
        let field = |name| form.get(name).trim().to_owned();
        CarrierForm {
            control_no: field("control_no").to_ascii_uppercase(),
            kind: field("kind"),
            level: field("level"),
            title: field("title"),
            copy_no: field("copy_no"),
            copies: field("copies"),
            owner_unit: field("owner_unit"),
            home_device: field("home_device"),
            tags: form.get("tags").to_owned(),
            secrecy_years: field("secrecy_years"),
            nonce: field(replay::NONCE_FIELD),
            errors: Vec::new(),
        }
    }

    fn tag_lines(&self) -> Vec<String> {
        self.tags
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The fields only the form has (kind, level, copy numbers, home cabinet) parsed here;
    /// the registration itself checked by the use case's check
    /// ([`carriers::check_registration`], or with a field unreadable, its text fields alone),
    /// so that every problem gets its message, one per field, in the form's order.
    fn validate(&mut self) -> Option<CarrierRegistration> {
        let kind = CarrierKind::from_name(&self.kind);
        if kind.is_none() {
            self.errors.push(("kind", Key::ErrCarrierKind));
        }
        let level = level_from_code(&self.level);
        if level.is_none() {
            self.errors.push(("level", Key::ErrLevel));
        }
        let copy_no = number(&self.copy_no);
        if copy_no.is_err() {
            self.errors.push(("copy_no", Key::ErrNumber));
        }
        let copies = number(&self.copies);
        if copies.is_err() {
            self.errors.push(("copies", Key::ErrNumber));
        }
        let secrecy_years = number(&self.secrecy_years);
        if secrecy_years.is_err() {
            self.errors.push(("secrecy_years", Key::ErrSecrecyPeriod));
        }
        let home = if self.home_device.is_empty() {
            Some(None)
        } else {
            let id = DeviceId::new(&self.home_device).ok();
            if id.is_none() {
                self.errors.push(("home_device", Key::ErrHomeCabinet));
            }
            id.map(Some)
        };
        let tags = self.tag_lines();
        let checked = match (kind, level, copy_no, copies, home, secrecy_years) {
            (
                Some(kind),
                Some(level),
                Ok(copy_no),
                Ok(copies),
                Some(home_device),
                Ok(secrecy_years),
            ) => {
                let input = CarrierRegistration {
                    control_no: self.control_no.clone(),
                    kind,
                    level,
                    title: self.title.clone(),
                    copy_no,
                    copies,
                    owner_unit: self.owner_unit.clone(),
                    home_device,
                    tags,
                    secrecy_years,
                };
                carriers::check_registration(&input).map(|_| Some(input))
            }
            _ => {
                carriers::check_texts_input(&self.control_no, &self.title, &self.owner_unit, &tags)
                    .map(|()| None)
            }
        };
        let input = match checked {
            Ok(input) => input,
            Err(ServiceError::Registration(errors)) => {
                self.registration_errors(&errors);
                None
            }
            Err(_) => None,
        };
        let order = |field: &str| FIELD_ORDER.iter().position(|f| *f == field);
        self.errors.sort_by_key(|(field, _)| order(field));
        self.errors.dedup_by_key(|(field, _)| *field);
        input.filter(|_| self.errors.is_empty())
    }

    /// Show a refused registration's problems at their fields.
    fn registration_errors(&mut self, errors: &[RegistrationError]) {
        for e in errors {
            self.errors.push(match e {
                RegistrationError::Input(input) => input_error(input),
                RegistrationError::Rule(rule) => rule_error(*rule),
            });
        }
    }
}

/// The registration form's fields, in the order their errors are listed.
const FIELD_ORDER: [&str; 10] = [
    "control_no",
    "kind",
    "level",
    "secrecy_years",
    "title",
    "copy_no",
    "copies",
    "owner_unit",
    "home_device",
    "tags",
];

fn input_error(e: &CarrierInputError) -> (&'static str, Key) {
    match e {
        CarrierInputError::ControlNo(_) => ("control_no", Key::ErrControlNo),
        CarrierInputError::Title => ("title", Key::ErrCarrierTitle),
        CarrierInputError::OwnerUnit => ("owner_unit", Key::ErrOwnerUnit),
        CarrierInputError::Tag { .. } => ("tags", Key::ErrTagFormat),
        CarrierInputError::TooManyTags => ("tags", Key::ErrTooManyTags),
        CarrierInputError::RepeatedTag { .. } => ("tags", Key::ErrTagRepeated),
    }
}

fn rule_error(rule: CarrierRuleError) -> (&'static str, Key) {
    match rule {
        CarrierRuleError::CopyNumberRequired => ("copy_no", Key::ErrCopyRequired),
        CarrierRuleError::CopyNumberOutOfRange => ("copy_no", Key::ErrCopyRange),
        CarrierRuleError::HomeNotCabinet => ("home_device", Key::ErrHomeCabinet),
        CarrierRuleError::LabelMismatch => ("tags", Key::ErrLabelMismatch),
        CarrierRuleError::SecrecyPeriodOutOfRange => ("secrecy_years", Key::ErrSecrecyPeriod),
    }
}

/// The GIAI-96 EPC proposed for the next carrier: hex and pure-identity URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpcProposal {
    /// Upper-case hex, as stored in a tag `epc:HEX`.
    pub hex: String,
    /// `urn:epc:id:giai:PREFIX.ASSET`.
    pub uri: String,
}

/// The EPC to encode for asset number `asset` under `company_prefix`.
pub fn propose_epc(company_prefix: &str, asset: u64) -> Option<EpcProposal> {
    let epc = tds::giai96(EPC_FILTER, company_prefix, asset).ok()?;
    Some(EpcProposal {
        hex: epc.to_string(),
        uri: tds::pure_identity_uri(&epc)?,
    })
}

/// `GET /carriers/new`.
pub async fn new_carrier(
    page: Page<CustodianDesk>,
    State(state): State<AppState>,
) -> Result<Markup, WebError> {
    let proposal = proposal(&state, &page).await?;
    let form = CarrierForm {
        tags: proposal
            .as_ref()
            .map(|p| format!("epc:{}\n", p.hex))
            .unwrap_or_default(),
        nonce: replay::fresh(),
        ..CarrierForm::default()
    };
    new_carrier_page(&state, &page, &form, proposal.as_ref()).await
}

async fn proposal(
    state: &AppState,
    page: &Page<CustodianDesk>,
) -> Result<Option<EpcProposal>, WebError> {
    let next = carriers::next_number(state, &page.cap.cap)
        .await
        .map_err(|e| page.session.internal(e))?;
    Ok(propose_epc(&state.settings().label_company_prefix, next))
}

/// `POST /carriers/new`: register; on success 303 to the carrier's page.
pub async fn create_carrier(
    State(state): State<AppState>,
    submitted: WebForm<CustodianDesk>,
) -> Result<Response, WebError> {
    let WebForm { page, form } = submitted;
    let mut carrier = CarrierForm::from(&form);
    let guard = match state
        .form_tokens()
        .claim(page.session.username(), &carrier.nonce)
    {
        Claim::Replay(to) => return Ok(see_other(&to)),
        Claim::InFlight => return Ok(see_other("/carriers")),
        Claim::Fresh(guard) => Some(guard),
        Claim::Unguarded => None,
    };
    let status = match carrier.validate() {
        None => StatusCode::UNPROCESSABLE_ENTITY,
        Some(input) => match carriers::register(&state, &page.cap.cap, input).await {
            Ok(id) => {
                let to = format!("/carriers/{id}?created=1");
                if let Some(guard) = guard {
                    guard.done(&to);
                }
                return Ok(see_other(&to));
            }
            Err(ServiceError::Registration(errors)) => {
                carrier.registration_errors(&errors);
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Err(ServiceError::Duplicate { what }) => {
                let (field, key) = if what == "control_no" {
                    ("control_no", Key::ErrControlNoTaken)
                } else {
                    ("tags", Key::ErrTagTaken)
                };
                carrier.errors.push((field, key));
                StatusCode::CONFLICT
            }
            Err(ServiceError::UnknownReference { .. }) => {
                carrier.errors.push(("home_device", Key::ErrHomeCabinet));
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Err(e) => return Err(page.session.internal(e)),
        },
    };
    let proposal = proposal(&state, &page).await?;
    let html = new_carrier_page(&state, &page, &carrier, proposal.as_ref()).await?;
    Ok((status, html).into_response())
}

fn select_other(value: &str, known: bool) -> Option<&str> {
    (!value.is_empty() && !known).then_some(value)
}

async fn new_carrier_page(
    state: &AppState,
    page: &Page<CustodianDesk>,
    form: &CarrierForm,
    proposal: Option<&EpcProposal>,
) -> Result<Markup, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let cabinets = cabinets::list(state, &page.cap.cap)
        .await
        .map_err(|e| session.internal(e))?;
    let errors = &form.errors;
    let label = CarrierLabel::new(&form.control_no)
        .ok()
        .map(|l| l.to_string());
    let home_known = cabinets.iter().any(|c| c.id.as_str() == form.home_device);
    let content = html! {
        h1 { (t(lang, Key::RegisterCarrier)) }
        div.admin-grid {
            section.panel.form-panel {
                (form_errors(lang, errors))
                form #carrier-form method="post" action="/carriers/new" data-once novalidate {
                    (csrf_field(session))
                    (replay::field(&form.nonce))
                    div.form-grid {
                        div {
                            label for="carrier-control-no" { (t(lang, Key::CarrierControlNo)) }
                            input #carrier-control-no type="text" name="control_no" value=(form.control_no)
                                required maxlength="24" autocomplete="off" spellcheck="false"
                                autocapitalize="characters" aria-invalid=[invalid(errors, "control_no")]
                                aria-describedby="carrier-control-no-hint";
                            p.hint #carrier-control-no-hint { (t(lang, Key::ControlNoHint)) }
                            (field_error(lang, errors, "control_no"))
                        }
                        div {
                            label for="carrier-kind" { (t(lang, Key::CarrierKindLabel)) }
                            select #carrier-kind name="kind" aria-invalid=[invalid(errors, "kind")] {
                                option value="" selected[form.kind.is_empty()] { (t(lang, Key::NoneOption)) }
                                @for k in CarrierKind::ALL {
                                    option value=(k.as_str()) selected[form.kind == k.as_str()] {
                                        (t(lang, i18n::carrier_kind(k)))
                                    }
                                }
                            }
                            (field_error(lang, errors, "kind"))
                        }
                        div {
                            label for="carrier-level" { (t(lang, Key::Level)) }
                            select #carrier-level name="level" aria-invalid=[invalid(errors, "level")] {
                                option value="" selected[form.level.is_empty()] { (t(lang, Key::NoneOption)) }
                                @for l in [Level::TopSecret, Level::Secret, Level::Confidential] {
                                    option value=(l.code()) selected[form.level == l.code()] {
                                        (t(lang, i18n::level(l)))
                                    }
                                }
                            }
                            (field_error(lang, errors, "level"))
                        }
                        div {
                            label for="carrier-secrecy-years" { (t(lang, Key::SecrecyPeriod)) }
                            input #carrier-secrecy-years type="text" name="secrecy_years"
                                value=(form.secrecy_years) inputmode="numeric" maxlength="2"
                                aria-invalid=[invalid(errors, "secrecy_years")]
                                aria-describedby="carrier-secrecy-years-hint";
                            p.hint #carrier-secrecy-years-hint { (t(lang, Key::SecrecyPeriodHint)) }
                            (field_error(lang, errors, "secrecy_years"))
                        }
                        div.wide {
                            label for="carrier-title" { (t(lang, Key::CarrierTitle)) }
                            input #carrier-title type="text" name="title" value=(form.title) required
                                maxlength="200" autocomplete="off" aria-invalid=[invalid(errors, "title")]
                                aria-describedby="carrier-title-hint";
                            p.hint #carrier-title-hint { (t(lang, Key::TitleHint)) }
                            (field_error(lang, errors, "title"))
                        }
                        div {
                            label for="carrier-copy-no" { (t(lang, Key::CopyNo)) }
                            input #carrier-copy-no type="text" name="copy_no" value=(form.copy_no)
                                inputmode="numeric" aria-invalid=[invalid(errors, "copy_no")];
                            (field_error(lang, errors, "copy_no"))
                        }
                        div {
                            label for="carrier-copies" { (t(lang, Key::Copies)) }
                            input #carrier-copies type="text" name="copies" value=(form.copies)
                                inputmode="numeric" aria-invalid=[invalid(errors, "copies")];
                            p.hint { (t(lang, Key::CopiesHint)) }
                            (field_error(lang, errors, "copies"))
                        }
                        div {
                            label for="carrier-owner-unit" { (t(lang, Key::OwnerUnit)) }
                            input #carrier-owner-unit type="text" name="owner_unit" value=(form.owner_unit)
                                required maxlength="200" aria-invalid=[invalid(errors, "owner_unit")];
                            (field_error(lang, errors, "owner_unit"))
                        }
                        div {
                            label for="carrier-home" { (t(lang, Key::HomeCabinet)) }
                            select #carrier-home name="home_device" aria-invalid=[invalid(errors, "home_device")] {
                                option value="" selected[form.home_device.is_empty()] { (t(lang, Key::NoneOption)) }
                                @for c in &cabinets {
                                    option value=(c.id) selected[c.id.as_str() == form.home_device] {
                                        (c.id) @if let Some(z) = &c.zone { " — " (z) }
                                    }
                                }
                                @if let Some(other) = select_other(&form.home_device, home_known) {
                                    option value=(other) selected { (other) }
                                }
                            }
                            (field_error(lang, errors, "home_device"))
                        }
                        div.wide {
                            label for="carrier-tags" { (t(lang, Key::Tags)) }
                            textarea #carrier-tags name="tags" rows="4" spellcheck="false"
                                aria-invalid=[invalid(errors, "tags")] aria-describedby="carrier-tags-hint" {
                                (form.tags)
                            }
                            p.hint #carrier-tags-hint { (t(lang, Key::TagsHint)) }
                            (field_error(lang, errors, "tags"))
                        }
                    }
                    button #carrier-submit .primary type="submit" { (t(lang, Key::Register)) }
                }
            }
            aside.panel #epc-proposal {
                h2 { (t(lang, Key::EpcToEncode)) }
                @if let Some(p) = proposal {
                    dl.facts {
                        div.fact { dt { (t(lang, Key::EpcHex)) } dd { code #epc-hex { (p.hex) } } }
                        div.fact { dt { (t(lang, Key::EpcUri)) } dd { code #epc-uri { (p.uri) } } }
                    }
                    p.hint { (t(lang, Key::EpcHint)) }
                } @else {
                    p.empty { (t(lang, Key::EpcUnavailable)) }
                }
                h2 { (t(lang, Key::LabelText)) }
                @match &label {
                    Some(text) => { p { code #label-preview { (text) } } }
                    None => { p.hint { (t(lang, Key::LabelAfterControlNo)) } }
                }
            }
        }
    };
    Ok(frame(
        session,
        t(lang, Key::RegisterCarrier),
        "custody",
        content,
    ))
}

// ---------------------------------------------------------------------------------------
// A carrier's page and label

fn parse_id(text: &str) -> Option<CarrierId> {
    text.parse().ok()
}

/// `GET /carriers/{id}` (custodian, security officer).
pub async fn carrier(
    page: Page<CustodyReader>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let Some(id) = parse_id(&id) else {
        return Ok(not_found(session, Key::CarrierNotFound));
    };
    let carrier = match carriers::one(&state, &page.cap, id).await {
        Ok(c) => c,
        Err(ServiceError::NotFound) => return Ok(not_found(session, Key::CarrierNotFound)),
        Err(e) => return Err(session.internal(e)),
    };
    let history = carriers::history(&state, &page.cap, id)
        .await
        .map_err(|e| session.internal(e))?;
    let created = query(session).non_empty("created").is_some();
    let lifecycle_panel =
        super::lifecycle::carrier_panel(&state, &page.cap, session, &carrier).await?;
    let s = &carrier.summary;
    let fact = |label: Key, field: &'static str, value: Markup| {
        html! { div.fact data-field=(field) { dt { (t(lang, label)) } dd { (value) } } }
    };
    let content = html! {
        @if created { p.flash #flash role="status" { (t(lang, Key::CarrierRegistered)) } }
        div.page-head {
            h1 #carrier-heading data-carrier-id=(s.id) {
                span.carrier-no { (s.control_no) } " " (level_tag(lang, s.level))
            }
        }
        div.carrier-grid {
            section.panel #carrier-facts {
                dl.facts {
                    (fact(Key::CarrierTitle, "title", html! { span.carrier-title { (carrier.title) } }))
                    (fact(Key::CarrierKindLabel, "kind", html! { (t(lang, i18n::carrier_kind(s.kind))) }))
                    (fact(Key::CarrierStateLabel, "state", super::repairs::state_tag(lang, s)))
                    (fact(Key::SecrecyPeriodFact, "secrecy", html! {
                        span #carrier-secrecy data-years=(s.secrecy_years) {
                            (secrecy_text(lang, s.level, s.secrecy_years))
                        }
                    }))
                    (fact(Key::CopyNo, "copy", html! {
                        @match (s.copy_no, s.copies) {
                            (Some(n), Some(total)) => { (n) " / " (total) }
                            (Some(n), None) => { (n) }
                            (None, Some(total)) => { "— / " (total) }
                            (None, None) => { "—" }
                        }
                    }))
                    (fact(Key::OwnerUnit, "owner_unit", html! { (s.owner_unit) }))
                    (fact(Key::HomeCabinet, "home", html! {
                        @if let Some(home) = &s.home_device { a href={ "/cabinets/" (encode(home)) } { (home) } } @else { "—" }
                    }))
                    (fact(Key::Holder, "holder", html! { @if let Some(h) = &s.holder { (h.name) } @else { "—" } }))
                    (fact(Key::LastSeen, "last_seen", html! {
                        @if let Some(seen) = &s.last_seen { (seen.device_id) " · " (layout::time(seen.at)) } @else { (t(lang, Key::Never)) }
                    }))
                    @if let Some(since) = s.missing_since {
                        (fact(Key::MissingSince, "missing_since", layout::time(since)))
                    }
                    @if let Some(so) = &s.signout {
                        (fact(Key::LiveSignout, "signout", html! {
                            "#" (so.id) " · " span.signout-state data-state=(so.state.as_str()) { (t(lang, i18n::signout_state(so.state))) } (super::datetime::overdue_mark(lang, so.state, so.due_at))
                            " · " (t(lang, Key::DueAt)) " " (layout::time(so.due_at))
                        }))
                    }
                    (fact(Key::CreatedAt, "created_at", layout::time(s.created_at)))
                }
                h2 { (t(lang, Key::Tags)) }
                @if s.tags.is_empty() {
                    p.empty { (t(lang, Key::NoTags)) }
                } @else {
                    ul #tag-list {
                        @for tag in &s.tags {
                            li.tag-item {
                                code.tag-text { (tag.tag) }
                                @if let Some(uri) = &tag.uri { " " code.tag-uri { (uri) } }
                            }
                        }
                    }
                }
            }
            section.panel #label-panel {
                h2 { (t(lang, Key::Label)) }
                p { code #label-text { (s.label) } }
                img #label-image src={ "/carriers/" (s.id) "/label.svg" } alt={ (t(lang, Key::Label)) " " (s.control_no) };
                p.hint { (t(lang, Key::LabelHint)) }
                p { a.button #label-open href={ "/carriers/" (s.id) "/label.svg" } target="_blank" rel="noopener" { (t(lang, Key::LabelPrint)) } }
                p.label-layouts {
                    a.button #label-sheet href={ "/labels?layout=sheet&ids=" (s.id) } { (t(lang, Key::LabelSheet)) }
                    " "
                    a.button #label-roll href={ "/labels?layout=roll&ids=" (s.id) } { (t(lang, Key::LabelRoll)) }
                }
            }
        }
        (super::approvals::carrier_panel(&state, session, &page.cap, id, s.kind).await?)
        (super::repairs::carrier_panel(&state, session, &page.cap, s).await?)
        section.panel #history-panel {
            h2 { (t(lang, Key::History)) }
            @if history.is_empty() {
                p.empty { (t(lang, Key::NoHistory)) }
            } @else {
                ol #history {
                    @for item in &history { (history_item(lang, item)) }
                }
            }
        }
        (lifecycle_panel)
    };
    let title = format!("{} · {}", t(lang, Key::Carrier), s.control_no);
    Ok(frame(session, &title, "custody", content).into_response())
}

fn history_item(lang: Lang, item: &HistoryItem) -> Markup {
    let (kind, at) = match item {
        HistoryItem::Passage { at, .. } => ("passage", at),
        HistoryItem::TurnedBack { at, .. } => ("turned_back", at),
        HistoryItem::Cabinet { at, .. } => ("cabinet", at),
        HistoryItem::Scan { at, .. } => ("scan", at),
        HistoryItem::Signout { at, .. } => ("signout", at),
        HistoryItem::Alert { at, .. } => ("alert", at),
    };
    // The moment the register lost track of it: a missing or cabinet-removal alert.
    let went_missing = matches!(item, HistoryItem::Alert { kind, .. }
        if kind == "missing" || kind == "cabinet_removal");
    html! {
        li.history-item.went-missing[went_missing] data-type=(kind)
            data-missing=[went_missing.then_some("true")] {
            span.history-time { (layout::time(*at)) }
            " "
            span.history-what {
                @match item {
                    HistoryItem::Passage { device_id, direction, .. } => {
                        (t(lang, Key::HistPassage)) " " strong { (device_id) }
                        @if let Some(key) = direction.as_deref().and_then(i18n::direction) {
                            " " span.passage-direction data-direction=[direction.as_deref()] { (t(lang, key)) }
                        }
                    }
                    HistoryItem::TurnedBack { device_id, direction, .. } => {
                        (t(lang, Key::HistTurnedBack)) " " strong { (device_id) }
                        @if let Some(key) = direction.as_deref().and_then(i18n::direction) {
                            " " span.passage-direction data-direction=[direction.as_deref()] { (t(lang, key)) }
                        }
                    }
                    HistoryItem::Cabinet { device_id, direction, .. } => {
                        @let (move_code, key) = match direction.as_deref() {
                            Some("in") => ("in", Key::HistCabinetIn),
                            Some("out") => ("out", Key::HistCabinetOut),
                            _ => ("seen", Key::HistCabinet),
                        };
                        span.cabinet-move data-move=(move_code) { (t(lang, key)) } " " strong { (device_id) }
                    }
                    HistoryItem::Scan { device_id, .. } => {
                        (t(lang, Key::HistScan)) " " strong { (device_id) }
                    }
                    HistoryItem::Signout { signout_id, event, by, .. } => {
                        (t(lang, i18n::signout_event(event))) " #" (signout_id)
                        @if let Some(by) = by { " · " (by) }
                    }
                    HistoryItem::Alert { alert_id, kind, state, .. } => {
                        (t(lang, Key::HistAlert)) " #" (alert_id) " "
                        @match crate::domain::alert::AlertKind::from_name(kind) {
                            Some(k) => strong { (t(lang, i18n::alert_kind(k))) },
                            None => strong { (kind) },
                        }
                        @if let Some(s) = crate::domain::alert::AlertState::from_name(state) {
                            " " span.state data-state=(state) { (t(lang, i18n::alert_state(s))) }
                        }
                        @if went_missing {
                            " " strong.missing-mark { (t(lang, Key::HistWentMissing)) }
                        }
                    }
                }
            }
        }
    }
}

/// A carrier's secrecy period in the page's language: the period mark `机密★10年` in Chinese
/// (as the label prints it), `Secret ★ 10 years` in English.
fn secrecy_text(lang: Lang, level: Level, years: u32) -> String {
    let name = t(lang, i18n::level(level));
    match lang {
        Lang::Zh => crate::domain::secrecy::mark(name, years),
        Lang::En => format!("{name} ★ {years} {}", t(lang, Key::SecrecyYearsUnit)),
    }
}

/// The facts a label prints, from a carrier's summary (which has no title).
pub fn label_facts(s: &CarrierSummary) -> LabelFacts<'_> {
    LabelFacts {
        control_no: &s.control_no,
        label_text: &s.label,
        level: s.level,
        copy: s.copy_no.map(|n| (n, s.copies)),
        secrecy_years: s.secrecy_years,
    }
}

/// `GET /carriers/{id}/label.svg` (custodian, security officer): the printable label.
pub async fn label(
    page: Page<CustodyReader>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let session = &page.session;
    let Some(id) = parse_id(&id) else {
        return Ok(not_found(session, Key::CarrierNotFound));
    };
    let carrier = match carriers::one(&state, &page.cap, id).await {
        Ok(c) => c,
        Err(ServiceError::NotFound) => return Ok(not_found(session, Key::CarrierNotFound)),
        Err(e) => return Err(session.internal(e)),
    };
    // Only the summary goes to the label: it has no title.
    let summary = carrier.summary;
    let svg = label_svg(&label_facts(&summary)).map_err(|e| session.internal(e))?;
    let disposition = format!("inline; filename=\"label-{}.svg\"", summary.control_no);
    Ok((
        [
            (CONTENT_TYPE, "image/svg+xml; charset=utf-8".to_owned()),
            (CONTENT_DISPOSITION, disposition),
        ],
        svg,
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------
// Cabinets (清点)

/// Why a reported carrier is not expected in the cabinet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extra {
    /// Its home is another cabinet (returned to the wrong one).
    WrongCabinet,
    /// It has no home cabinet.
    NoHome,
    /// Its home is here, but the register says it is not in storage (out, missing, ...).
    NotInStorage,
}

/// A cabinet's count: what is there as expected, what is missing, what should not be there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison<'a> {
    /// Expected and reported.
    pub present: Vec<&'a ShelfCarrier>,
    /// Expected (home here, in storage) but not reported.
    pub missing: Vec<&'a ShelfCarrier>,
    /// Reported but not expected, and why.
    pub extra: Vec<(&'a ShelfCarrier, Extra)>,
}

/// Compare what cabinet `contents.cabinet` should hold with what it last reported.
pub fn compare(contents: &CabinetContents) -> Comparison<'_> {
    let reported = |id: CarrierId| contents.reported.iter().any(|r| r.id == id);
    let expected = |id: CarrierId| contents.expected.iter().any(|e| e.id == id);
    let here = contents.cabinet.id.as_str();
    Comparison {
        present: contents
            .reported
            .iter()
            .filter(|r| expected(r.id))
            .collect(),
        missing: contents
            .expected
            .iter()
            .filter(|e| !reported(e.id))
            .collect(),
        extra: contents
            .reported
            .iter()
            .filter(|r| !expected(r.id))
            .map(|r| {
                let why = match r.home_device.as_deref() {
                    None => Extra::NoHome,
                    Some(home) if home != here => Extra::WrongCabinet,
                    Some(_) => Extra::NotInStorage,
                };
                (r, why)
            })
            .collect(),
    }
}

/// `GET /cabinets`: every cabinet with its count.
pub async fn cabinets(
    page: Page<CustodianDesk>,
    State(state): State<AppState>,
) -> Result<Markup, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let list = cabinets::list(&state, &page.cap.cap)
        .await
        .map_err(|e| session.internal(e))?;
    let mut counts = Vec::with_capacity(list.len());
    for cabinet in &list {
        let contents = cabinets::contents(&state, &page.cap.cap, cabinet.id.clone())
            .await
            .map_err(|e| session.internal(e))?;
        counts.push(contents.map(|c| {
            let cmp = compare(&c);
            (cmp.present.len(), cmp.missing.len(), cmp.extra.len())
        }));
    }
    let content = html! {
        h1 { (t(lang, Key::CabinetsTitle)) }
        section.panel {
            @if list.is_empty() {
                p #cabinet-empty .empty { (t(lang, Key::NoCabinets)) }
            } @else {
                table #cabinet-table {
                    thead { tr {
                        th { (t(lang, Key::KindCabinet)) } th { (t(lang, Key::Zone)) }
                        th { (t(lang, Key::PresentAsExpected)) } th { (t(lang, Key::MissingFromCabinet)) }
                        th { (t(lang, Key::ExtraInCabinet)) } th { (t(lang, Key::LastSnapshot)) }
                    } }
                    tbody {
                        @for (c, n) in list.iter().zip(&counts) {
                            @let (present, missing, extra) = n.unwrap_or((0, 0, 0));
                            tr data-device-id=(c.id) .attention[missing + extra > 0] {
                                td { a href={ "/cabinets/" (encode(c.id.as_str())) } { (c.id) } }
                                td { @if let Some(z) = &c.zone { (z) } }
                                td.count-present { (present) }
                                td.count-missing { (missing) }
                                td.count-extra { (extra) }
                                td { (maybe_time(lang, c.last_snapshot)) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(frame(
        session,
        t(lang, Key::CabinetsTitle),
        "custody",
        content,
    ))
}

fn shelf_item(lang: Lang, c: &ShelfCarrier, extra: Option<Extra>) -> Markup {
    html! {
        li.shelf-carrier data-carrier-id=(c.id) data-state=(c.state.as_str()) {
            (carrier_link(c.id, &c.control_no)) " " (level_tag(lang, c.level))
            @if let Some(why) = extra {
                " " span.extra-reason data-reason=(match why {
                    Extra::WrongCabinet => "wrong_cabinet",
                    Extra::NoHome => "no_home",
                    Extra::NotInStorage => "not_in_storage",
                }) {
                    @match why {
                        Extra::WrongCabinet => {
                            (t(lang, Key::ExtraWrongCabinet)) " "
                            @if let Some(home) = &c.home_device { strong { (home) } }
                        }
                        Extra::NoHome => { (t(lang, Key::ExtraNoHome)) }
                        Extra::NotInStorage => {
                            (t(lang, Key::ExtraNotInStorage)) " " (state_tag(lang, c.state))
                        }
                    }
                }
            }
            @if let Some(since) = c.since { " " span.since { (t(lang, Key::SeenSince)) " " (layout::time(since)) } }
        }
    }
}

/// `GET /cabinets/{id}`: expected contents against the last report.
pub async fn cabinet(
    page: Page<CustodianDesk>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let Ok(device) = DeviceId::new(&id) else {
        return Ok(not_found(session, Key::CabinetNotFound));
    };
    let Some(contents) = cabinets::contents(&state, &page.cap.cap, device)
        .await
        .map_err(|e| session.internal(e))?
    else {
        return Ok(not_found(session, Key::CabinetNotFound));
    };
    let cmp = compare(&contents);
    let CabinetRow {
        id, last_snapshot, ..
    } = &contents.cabinet;
    let content = html! {
        h1 #cabinet-heading data-device-id=(id) { (t(lang, Key::KindCabinet)) " " (id) }
        p #cabinet-snapshot { (t(lang, Key::LastSnapshot)) ": " (maybe_time(lang, *last_snapshot)) }
        div.cabinet-grid {
            section.panel {
                h2 { (t(lang, Key::PresentAsExpected)) " (" (cmp.present.len()) ")" }
                ul #cabinet-present .shelf {
                    @for c in &cmp.present { (shelf_item(lang, c, None)) }
                }
            }
            section.panel.bad-panel {
                h2 { (t(lang, Key::MissingFromCabinet)) " (" (cmp.missing.len()) ")" }
                ul #cabinet-missing .shelf {
                    @for c in &cmp.missing { (shelf_item(lang, c, None)) }
                }
            }
            section.panel.warn-panel {
                h2 { (t(lang, Key::ExtraInCabinet)) " (" (cmp.extra.len()) ")" }
                ul #cabinet-extra .shelf {
                    @for (c, why) in &cmp.extra { (shelf_item(lang, c, Some(*why))) }
                }
            }
        }
        p { a href="/cabinets" { (t(lang, Key::BackToCabinets)) } }
    };
    let title = format!("{} · {}", t(lang, Key::KindCabinet), id);
    Ok(frame(session, &title, "custody", content).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::carrier::Tag;

    fn form(body: &str) -> FormData {
        FormData::parse(body.as_bytes()).unwrap()
    }

    #[test]
    fn the_registration_form_reports_every_field_and_keeps_the_values() {
        let mut f = CarrierForm::from(&form(
            "control_no=a+b&kind=scroll&level=X&title=&copy_no=one&copies=2&owner_unit=&tags=epc%3AXYZ",
        ));
        assert!(f.validate().is_none());
        let fields: Vec<_> = f.errors.iter().map(|(f, _)| *f).collect();
        assert_eq!(
            fields,
            [
                "control_no",
                "kind",
                "level",
                "title",
                "copy_no",
                "owner_unit",
                "tags"
            ]
        );
        assert_eq!(f.control_no, "A B", "kept (upper-cased) as typed");
        assert_eq!(f.copies, "2");
    }

    #[test]
    fn the_domain_rules_across_fields_are_reported_on_their_field() {
        let mut f = CarrierForm::from(&form(
            "control_no=2024-0017&kind=paper&level=TS&title=T&owner_unit=U",
        ));
        assert!(f.validate().is_none());
        assert_eq!(f.errors, [("copy_no", Key::ErrCopyRequired)]);
        let mut f = CarrierForm::from(&form(
            "control_no=2024-0017&kind=paper&level=S&title=T&owner_unit=U&tags=em%3A1A00B54E12%0D%0Aem%3A1a00b54e12",
        ));
        assert!(f.validate().is_none());
        assert_eq!(f.errors, [("tags", Key::ErrTagRepeated)]);
        let mut f = CarrierForm::from(&form(
            "control_no=2024-0017&kind=paper&level=S&title=T&owner_unit=U&copy_no=1&copies=3&home_device=cab-1&tags=%0Aepc%3A3474257BF40000000000162E%0A",
        ));
        let new = f.validate().expect("valid");
        assert_eq!(new.control_no.as_str(), "2024-0017");
        assert_eq!(new.tags.len(), 1);
        assert_eq!(new.home_device.unwrap().as_str(), "cab-1");
    }

    #[test]
    fn the_proposed_epc_is_giai_96_of_the_prefix_and_number() {
        // /work/shared/vectors/epc-tds.txt, line 8 (filter 0, as Custos tags carriers).
        let p = propose_epc("4012345", 987_654_321).unwrap();
        assert_eq!(p.hex, "3414F4E4E40000003ADE68B1");
        assert_eq!(p.uri, "urn:epc:id:giai:4012345.987654321");
        // Line 7 has filter 3 (bits 011 after the header); with filter 0 only they change.
        let p = propose_epc("0614141", 5678).unwrap();
        assert_eq!(p.hex, "3414257BF40000000000162E");
        assert_eq!(p.uri, "urn:epc:id:giai:0614141.5678");
        assert_eq!(
            Tag::parse(&format!("epc:{}", p.hex))
                .unwrap()
                .pure_identity_uri()
                .as_deref(),
            Some(p.uri.as_str())
        );
        assert!(propose_epc("06141", 1).is_none(), "prefix too short");
    }

    fn shelf(id: i64, home: Option<&str>, state: CarrierState) -> ShelfCarrier {
        ShelfCarrier {
            id: CarrierId(id),
            control_no: format!("N{id}"),
            level: Level::Secret,
            state,
            home_device: home.map(str::to_owned),
            since: None,
        }
    }

    #[test]
    fn a_count_splits_present_missing_and_extra() {
        let cabinet = CabinetRow {
            id: DeviceId::new("cab-1").unwrap(),
            zone: None,
            last_snapshot: None,
        };
        let here = Some("cab-1");
        let contents = CabinetContents {
            cabinet,
            expected: vec![
                shelf(1, here, CarrierState::InStorage),
                shelf(2, here, CarrierState::InStorage),
            ],
            reported: vec![
                shelf(1, here, CarrierState::InStorage),
                shelf(3, Some("cab-2"), CarrierState::InStorage),
                shelf(4, None, CarrierState::InStorage),
                shelf(5, here, CarrierState::Out),
            ],
        };
        let cmp = compare(&contents);
        let ids = |v: &[&ShelfCarrier]| v.iter().map(|c| c.id.0).collect::<Vec<_>>();
        assert_eq!(ids(&cmp.present), [1]);
        assert_eq!(ids(&cmp.missing), [2]);
        let extra: Vec<_> = cmp.extra.iter().map(|(c, why)| (c.id.0, *why)).collect();
        assert_eq!(
            extra,
            [
                (3, Extra::WrongCabinet),
                (4, Extra::NoHome),
                (5, Extra::NotInStorage)
            ]
        );
    }
}
