//! Finding the borrower on the sign-out form by what the custodian has at hand: a badge
//! scanned into the field (a keyboard-wedge reader types the badge's tag), a typed name
//! (the field suggests the people in post as one types), or, as before, a person's id.
//! Replaces a drop-down of everyone, which at a few hundred people nobody can use.

use axum::Json;
use axum::extract::State;
use maud::{Markup, html};
use serde_json::{Value, json};

use super::custodian::{CustodianDesk, query};
use super::desk::resolve;
use super::i18n::{self, Key, t};
use super::session::{Page, WebError};
use crate::AppState;
use crate::domain::ids::{CarrierId, PersonId};
use crate::domain::person::PersonStatus;
use crate::service::{people, signouts};
use crate::store::people::Person;

/// `GET /signouts/check.json?borrower=&carrier_id=…&carriers=`: what the issue rules would
/// refuse for this borrower and these carriers, asked by the sign-out form as it is filled
/// in (before it is submitted): `{"borrower": id|null, "borrower_error": text|null,
/// "refusals": [{"code", "text"}]}`, texts in the page language. The rules are the issue's
/// own ([`signouts::check`]); nothing is stored.
pub async fn check_json(
    page: Page<CustodianDesk>,
    State(state): State<AppState>,
) -> Result<Json<Value>, WebError> {
    let session = &page.session;
    let lang = session.lang;
    let q = query(session);
    let everyone = people::list(&state, &page.cap.people)
        .await
        .map_err(|e| session.internal(e))?;
    let candidates: Vec<Candidate<'_>> = everyone.iter().map(Candidate::of).collect();
    let borrower = match find(q.get("borrower"), &candidates) {
        Ok(id) => id,
        Err(key) => {
            return Ok(Json(json!({
                "borrower": null,
                "borrower_error": t(lang, key),
                "refusals": [],
            })));
        }
    };
    let mut carriers: Vec<CarrierId> = q
        .all("carrier_id")
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    for line in q
        .get("carriers")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        if let Some(c) = resolve(&state, &page.cap, line)
            .await
            .map_err(|e| session.internal(e))?
        {
            carriers.push(c.summary.id);
        }
    }
    let codes = signouts::check(&state, &page.cap.cap, borrower, carriers)
        .await
        .map_err(|e| session.internal(e))?;
    let refusals: Vec<Value> = codes
        .iter()
        .map(|code| json!({"code": code, "text": t(lang, i18n::refusal(code))}))
        .collect();
    Ok(Json(json!({
        "borrower": borrower.to_string(),
        "borrower_error": null,
        "refusals": refusals,
    })))
}

/// What the search looks at of a person.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The person.
    pub id: PersonId,
    /// Name.
    pub name: &'a str,
    /// Department.
    pub department: &'a str,
    /// Badge tag, if any.
    pub badge_tag: Option<&'a str>,
}

impl<'a> Candidate<'a> {
    /// The search's view of a registered person.
    pub fn of(p: &'a Person) -> Candidate<'a> {
        Candidate {
            id: p.id,
            name: &p.name,
            department: &p.department,
            badge_tag: p.badge_tag.as_deref(),
        }
    }
}

/// The text a suggestion puts in the field: name and department (what tells two 王伟 apart).
pub fn suggestion(name: &str, department: &str) -> String {
    format!("{name} · {department}")
}

/// The person the typed or scanned `text` names, or why none: an id, a badge tag (any case),
/// a suggestion's text, then a name that only one person has (exactly, else as a part).
pub fn find(text: &str, people: &[Candidate<'_>]) -> Result<PersonId, Key> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Key::ErrBorrower);
    }
    if let Ok(id) = text.parse::<PersonId>()
        && people.iter().any(|p| p.id == id)
    {
        return Ok(id);
    }
    let badge = people
        .iter()
        .find(|p| p.badge_tag.is_some_and(|b| b.eq_ignore_ascii_case(text)));
    if let Some(p) = badge {
        return Ok(p.id);
    }
    if let Some(p) = people
        .iter()
        .find(|p| suggestion(p.name, p.department) == text)
    {
        return Ok(p.id);
    }
    let one = |matches: Vec<&Candidate<'_>>| match matches.as_slice() {
        [p] => Some(Ok(p.id)),
        [] => None,
        _ => Some(Err(Key::ErrBorrowerAmbiguous)),
    };
    let exact: Vec<&Candidate<'_>> = people.iter().filter(|p| p.name == text).collect();
    if let Some(found) = one(exact) {
        return found;
    }
    let partial: Vec<&Candidate<'_>> = people.iter().filter(|p| p.name.contains(text)).collect();
    one(partial).unwrap_or(Err(Key::ErrBorrowerUnknown))
}

/// The borrower field: a text input for a scan or a name, suggesting the people in post.
pub fn field(value: &str, people: &[Person], invalid: Option<&'static str>) -> Markup {
    html! {
        input #signout-borrower type="text" name="borrower" value=(value) list="signout-people"
            autocomplete="off" spellcheck="false" aria-invalid=[invalid]
            aria-describedby="signout-borrower-hint";
        datalist #signout-people {
            @for p in people.iter().filter(|p| p.status == PersonStatus::Active) {
                option value=(suggestion(&p.name, &p.department)) data-person-id=(p.id) {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person<'a>(id: &str, name: &'a str, badge: Option<&'a str>) -> Candidate<'a> {
        Candidate {
            id: id.parse().unwrap(),
            name,
            department: "一处",
            badge_tag: badge,
        }
    }

    #[test]
    fn a_badge_a_name_or_an_id_finds_the_borrower() {
        let people = [
            person("1", "王伟", Some("E200AA")),
            person("2", "王伟东", None),
            person("3", "李娜", None),
        ];
        let id = |n: &str| n.parse::<PersonId>().unwrap();
        assert_eq!(find("e200aa", &people), Ok(id("1")));
        assert_eq!(find("王伟", &people), Ok(id("1")), "an exact name wins");
        assert_eq!(find("李", &people), Ok(id("3")));
        assert_eq!(find("3", &people), Ok(id("3")));
        assert_eq!(find("王伟东 · 一处", &people), Ok(id("2")));
        assert_eq!(find("王", &people), Err(Key::ErrBorrowerAmbiguous));
        assert_eq!(find("赵", &people), Err(Key::ErrBorrowerUnknown));
        assert_eq!(find(" ", &people), Err(Key::ErrBorrower));
    }
}
