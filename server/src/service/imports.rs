//! Data in: a site's existing register of carriers or people, loaded from CSV.
//!
//! An import is all or nothing. Every row is checked as the single registration would check
//! it (the same functions), then registered inside ONE write transaction, so that what only
//! the database knows (a control number or badge already taken, an unknown home cabinet) is
//! found too. A dry run (the default) and a commit with any problem both roll the whole
//! transaction back and answer every row's problems at once; a commit without problems keeps
//! every row, each with its own audit entry, as if registered one by one.
//!
//! The file is the one [`crate::service::exports`] writes (UTF-8, optional BOM, RFC 4180):
//! the first record names the columns, in any order; unknown columns are refused (a typo
//! would silently drop data). A cell that an export neutralised (`'=…`) is read back without
//! the `'`.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Problem, ServiceError};
use crate::AppState;
use crate::auth::capability::{CustodianCap, SecurityOfficerCap};
use crate::domain::carrier::{CarrierKind, level_from_code};
use crate::domain::csv::{self, Record};
use crate::domain::ids::DeviceId;
use crate::store::StoreError;
use crate::store::people::NewPerson;

use super::carriers::CarrierRegistration;

/// The most data rows one import takes.
pub const MAX_ROWS: usize = 5_000;

/// One problem of one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RowProblem {
    /// The line of the file where the row starts (the header is line 1).
    pub line: usize,
    /// The column concerned, if one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// What an import found and did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    /// Whether the rows were kept (a commit without problems).
    pub committed: bool,
    /// Data rows in the file.
    pub rows: usize,
    /// Every problem of every row, by line; empty when the file can be committed.
    pub problems: Vec<RowProblem>,
    /// The ids of the registered rows, in file order (only when committed).
    pub ids: Vec<String>,
}

/// How a trial transaction ends: rolled back with its report, or failed.
enum Trial {
    RolledBack(ImportReport),
    Failed(ServiceError),
}

impl From<StoreError> for Trial {
    fn from(e: StoreError) -> Trial {
        Trial::Failed(ServiceError::Store(e))
    }
}

fn problem(line: usize, column: Option<&str>, message: impl Into<String>) -> RowProblem {
    RowProblem {
        line,
        column: column.map(str::to_owned),
        message: message.into(),
    }
}

/// A cell as imported: trimmed, the `'` an export put before a formula character removed.
fn cell(text: &str) -> &str {
    let text = text.trim();
    match text.strip_prefix('\'') {
        Some(rest) if csv::neutralise(rest).starts_with('\'') => rest,
        _ => text,
    }
}

/// Columns an export writes that an import skips (the server assigns them), so that an
/// exported register loads into another site as it is.
const EXPORT_ONLY: &[&str] = &[
    "id",
    "label",
    "state",
    "status",
    "holder",
    "missing_since",
    "last_seen_device",
    "last_seen_at",
    "leaving_since",
    "decommissioning_ends_on",
    "created_at",
];

/// The header's column positions; problems for unknown, repeated or missing columns.
fn columns(
    header: &Record,
    known: &[&str],
    required: &[&str],
) -> Result<HashMap<String, usize>, Vec<RowProblem>> {
    let mut map = HashMap::new();
    let mut problems = Vec::new();
    for (i, name) in header.fields.iter().enumerate() {
        let name = cell(name).to_ascii_lowercase();
        if EXPORT_ONLY.contains(&name.as_str()) {
            continue;
        }
        if !known.contains(&name.as_str()) {
            problems.push(problem(1, Some(&name), "unknown column"));
        } else if map.insert(name.clone(), i).is_some() {
            problems.push(problem(1, Some(&name), "repeated column"));
        }
    }
    for name in required {
        if !map.contains_key(*name) {
            problems.push(problem(1, Some(name), "missing column"));
        }
    }
    if problems.is_empty() {
        Ok(map)
    } else {
        Err(problems)
    }
}

/// A file's data records and the header's column positions.
type Table = (Vec<Record>, HashMap<String, usize>);

/// The data records of `text` and the header's columns, or the file-level problems.
fn read(text: &str, known: &[&str], required: &[&str]) -> Result<Table, Vec<RowProblem>> {
    let mut records = csv::parse(text).map_err(|e| {
        let line = match e {
            csv::CsvError::Unclosed { line } | csv::CsvError::StrayQuote { line } => line,
        };
        vec![problem(line, None, e.to_string())]
    })?;
    if records.is_empty() {
        return Err(vec![problem(
            1,
            None,
            "the file is empty: a header is needed",
        )]);
    }
    let header = records.remove(0);
    let map = columns(&header, known, required)?;
    if records.len() > MAX_ROWS {
        return Err(vec![problem(1, None, format!("more than {MAX_ROWS} rows"))]);
    }
    Ok((records, map))
}

/// The value of `column` in `record` (absent or empty: `None`).
fn field<'r>(record: &'r Record, map: &HashMap<String, usize>, column: &str) -> Option<&'r str> {
    let i = *map.get(column)?;
    record
        .fields
        .get(i)
        .map(|s| cell(s))
        .filter(|s| !s.is_empty())
}

/// Check that each value of `column` appears once in the file.
fn repeated(
    seen: &mut HashSet<String>,
    value: Option<&str>,
    line: usize,
    column: &str,
    out: &mut Vec<RowProblem>,
) {
    if let Some(v) = value
        && !seen.insert(v.to_ascii_uppercase())
    {
        out.push(problem(line, Some(column), "appears twice in the file"));
    }
}

/// The words of a refusal, by field where the service names one.
fn service_problems(line: usize, e: &ServiceError) -> Vec<RowProblem> {
    match e {
        ServiceError::Invalid(list) => list
            .iter()
            .map(|p: &Problem| problem(line, Some(p.field), p.message))
            .collect(),
        ServiceError::Registration(list) => list
            .iter()
            .map(|r| problem(line, None, r.to_string()))
            .collect(),
        ServiceError::Duplicate { what } => {
            vec![problem(line, Some(what), format!("{what} already exists"))]
        }
        ServiceError::UnknownReference { what } => {
            vec![problem(line, Some(what), format!("unknown {what}"))]
        }
        other => vec![problem(line, None, other.to_string())],
    }
}

/// Run `rows` (each already checked; `None` where a row has problems) through `register`
/// in one write transaction; keep it only for a commit with no problem at all.
async fn trial<T, F>(
    app: &AppState,
    rows: Vec<(usize, Option<T>)>,
    mut problems: Vec<RowProblem>,
    commit: bool,
    register: F,
) -> Result<ImportReport, ServiceError>
where
    T: Send + 'static,
    F: Fn(&mut dyn crate::store::Tx, &T) -> Result<String, ServiceError> + Send + 'static,
{
    let count = rows.len();
    let result = app
        .store()
        .transact(move |tx| {
            let mut ids = Vec::new();
            for (line, row) in &rows {
                let Some(row) = row else { continue };
                match register(tx, row) {
                    Ok(id) => ids.push(id),
                    Err(ServiceError::Store(e)) => {
                        return Err(Trial::Failed(ServiceError::Store(e)));
                    }
                    Err(e) => problems.extend(service_problems(*line, &e)),
                }
            }
            problems.sort_by_key(|p| p.line);
            let report = ImportReport {
                committed: commit && problems.is_empty(),
                rows: count,
                problems,
                ids,
            };
            if report.committed {
                Ok(report)
            } else {
                // A dry run, or a refused commit: nothing of it stays.
                Err(Trial::RolledBack(ImportReport {
                    ids: Vec::new(),
                    ..report
                }))
            }
        })
        .await;
    match result {
        Ok(report) | Err(Trial::RolledBack(report)) => Ok(report),
        Err(Trial::Failed(e)) => Err(e),
    }
}

const PEOPLE_COLUMNS: &[&str] = &[
    "name",
    "department",
    "category",
    "badge_tag",
    "training_valid_until",
    "commitment_signed_on",
];

/// Import people (security officers): a dry run unless `commit`.
pub async fn people(
    app: &AppState,
    cap: &SecurityOfficerCap,
    text: &str,
    commit: bool,
) -> Result<ImportReport, ServiceError> {
    let (records, map) = match read(text, PEOPLE_COLUMNS, &["name", "department", "category"]) {
        Ok(found) => found,
        Err(problems) => return Ok(refused(problems)),
    };
    let mut problems = Vec::new();
    let mut badges = HashSet::new();
    let mut rows = Vec::new();
    for record in &records {
        let line = record.line;
        let mut object = Map::new();
        for column in PEOPLE_COLUMNS {
            if let Some(v) = field(record, &map, column) {
                object.insert((*column).to_owned(), Value::String(v.to_owned()));
            }
        }
        repeated(
            &mut badges,
            field(record, &map, "badge_tag"),
            line,
            "badge_tag",
            &mut problems,
        );
        let person = match serde_json::from_value::<NewPerson>(Value::Object(object)) {
            Ok(p) => p,
            Err(e) => {
                problems.push(problem(line, None, e.to_string()));
                rows.push((line, None));
                continue;
            }
        };
        match super::people::check_new_person(
            &person.name,
            &person.department,
            person.badge_tag.as_deref(),
        ) {
            Ok(()) => rows.push((line, Some(person))),
            Err(e) => {
                problems.extend(service_problems(line, &e));
                rows.push((line, None));
            }
        }
    }
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    trial(
        app,
        rows,
        problems,
        commit,
        move |tx, person: &NewPerson| {
            super::people::register_in(tx, &actor, person, at).map(|id| id.to_string())
        },
    )
    .await
}

const CARRIER_COLUMNS: &[&str] = &[
    "control_no",
    "kind",
    "level",
    "title",
    "copy_no",
    "copies",
    "owner_unit",
    "home_device",
    "tags",
];

/// One carrier row as a registration, or its form problems.
fn carrier_row(
    record: &Record,
    map: &HashMap<String, usize>,
) -> Result<CarrierRegistration, Vec<RowProblem>> {
    let line = record.line;
    let mut problems = Vec::new();
    let text = |c: &str| field(record, map, c).unwrap_or_default().to_owned();
    let kind = match serde_json::from_value::<CarrierKind>(Value::String(text("kind"))) {
        Ok(k) => Some(k),
        Err(_) => {
            problems.push(problem(line, Some("kind"), "kind must be paper, magnetic_disk, optical_disc, flash, hard_disk, laptop or device"));
            None
        }
    };
    let level = level_from_code(&text("level"));
    if level.is_none() {
        problems.push(problem(line, Some("level"), "level must be TS, S or C"));
    }
    let mut number = |c: &'static str| match field(record, map, c) {
        None => None,
        Some(v) => v.parse::<u32>().ok().or_else(|| {
            problems.push(problem(
                line,
                Some(c),
                format!("{c} must be a whole number"),
            ));
            None
        }),
    };
    let (copy_no, copies) = (number("copy_no"), number("copies"));
    let home_device = match field(record, map, "home_device") {
        None => None,
        Some(v) => match DeviceId::new(v) {
            Ok(id) => Some(id),
            Err(_) => {
                problems.push(problem(line, Some("home_device"), "not a device id"));
                None
            }
        },
    };
    let tags: Vec<String> = text("tags")
        .split([';', ' ', '\n'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    match (kind, level, problems.is_empty()) {
        (Some(kind), Some(level), true) => Ok(CarrierRegistration {
            control_no: text("control_no"),
            kind,
            level,
            title: text("title"),
            copy_no,
            copies,
            owner_unit: text("owner_unit"),
            home_device,
            tags,
            // The import columns predate the secrecy period: the level's default.
            secrecy_years: None,
        }),
        _ => Err(problems),
    }
}

/// Import carriers (custodians): a dry run unless `commit`. Tags are separated by `;` or
/// spaces, as the register export writes them.
pub async fn carriers(
    app: &AppState,
    cap: &CustodianCap,
    text: &str,
    commit: bool,
) -> Result<ImportReport, ServiceError> {
    let required = &["control_no", "kind", "level", "title", "owner_unit"];
    let (records, map) = match read(text, CARRIER_COLUMNS, required) {
        Ok(found) => found,
        Err(problems) => return Ok(refused(problems)),
    };
    let mut problems = Vec::new();
    let (mut numbers, mut tags) = (HashSet::new(), HashSet::new());
    let mut rows = Vec::new();
    for record in &records {
        let line = record.line;
        let registration = match carrier_row(record, &map) {
            Ok(r) => r,
            Err(found) => {
                problems.extend(found);
                rows.push((line, None));
                continue;
            }
        };
        repeated(
            &mut numbers,
            Some(&registration.control_no),
            line,
            "control_no",
            &mut problems,
        );
        for tag in &registration.tags {
            repeated(&mut tags, Some(tag), line, "tags", &mut problems);
        }
        match super::carriers::check_registration(&registration) {
            Ok(carrier) => rows.push((line, Some(carrier))),
            Err(e) => {
                problems.extend(service_problems(line, &e));
                rows.push((line, None));
            }
        }
    }
    let actor = cap.actor().name().to_owned();
    let at = app.now();
    trial(app, rows, problems, commit, move |tx, carrier| {
        super::carriers::register_in(tx, &actor, carrier, at).map(|id| id.to_string())
    })
    .await
}

/// The report of a file refused before any row was tried.
fn refused(problems: Vec<RowProblem>) -> ImportReport {
    ImportReport {
        committed: false,
        rows: 0,
        problems,
        ids: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exported_neutralised_cell_reads_back_as_typed() {
        assert_eq!(cell("'=1+1"), "=1+1");
        assert_eq!(cell("'plain"), "'plain");
        assert_eq!(cell("  x "), "x");
    }

    #[test]
    fn the_header_must_name_known_columns_once_and_the_required_ones() {
        let header = Record {
            line: 1,
            fields: vec!["Name".into(), "nmae".into(), "name".into()],
        };
        let problems = columns(&header, PEOPLE_COLUMNS, &["name", "department"]).unwrap_err();
        let said: Vec<_> = problems
            .iter()
            .map(|p| (p.column.clone().unwrap(), p.message.as_str()))
            .collect();
        assert_eq!(
            said,
            [
                ("nmae".to_owned(), "unknown column"),
                ("name".to_owned(), "repeated column"),
                ("department".to_owned(), "missing column"),
            ]
        );
    }

    #[test]
    fn a_carrier_row_names_every_bad_field() {
        let map: HashMap<String, usize> = CARRIER_COLUMNS
            .iter()
            .enumerate()
            .map(|(i, c)| ((*c).to_owned(), i))
            .collect();
        let record = Record {
            line: 3,
            fields: ["C-1", "scroll", "X", "t", "one", "", "u", "", ""]
                .map(str::to_owned)
                .to_vec(),
        };
        let problems = carrier_row(&record, &map).unwrap_err();
        let columns: Vec<_> = problems.iter().map(|p| p.column.clone().unwrap()).collect();
        assert_eq!(columns, ["kind", "level", "copy_no"]);
        assert!(problems.iter().all(|p| p.line == 3));
    }
}
