//! The list pages besides the register (issue 14 on the pages) in a real browser, at 1400 px
//! and 800 px: the officer's people, the custodian's sign-outs and the auditor's trail each
//! show one page with a link to the next, the search (typed and sent with the keyboard)
//! narrows and is kept by the next link, and a sort header reverses the order. Seeded through
//! the JSON API with more rows than a page. DOM hooks: `server/src/web/DOM_HOOKS.md` ("List
//! pages"); `CUSTOS_BROWSER_SCREENSHOTS=1` keeps screenshots.

#[allow(dead_code)] // the scene serves every browser test file; this one uses a part
#[path = "browser/scene.rs"]
mod scene;
#[path = "browser/support.rs"]
mod support;
#[allow(dead_code)]
#[path = "browser/webdriver.rs"]
mod webdriver;

use hyper::Method;
use scene::{ADMIN_PASSWORD, PASSWORD, Scene};
use serde_json::{Value, json};
use support::*;
use webdriver::{ENTER, Session, WdResult};

/// A desk monitor and a tablet.
const WIDTHS: [u32; 2] = [1400, 800];
/// People registered as `P-01`..: more than two pages of the people page (25).
const PEOPLE: usize = 60;
/// Sign-outs requested: more than a page of the sign-outs page (25).
const SIGNOUTS: usize = 30;
/// What the administrator gives a new account (the scene's).
const INITIAL_PASSWORD: &str = "temporary passphrase 1";

/// A bearer token for `username`.
async fn token(scene: &Scene, username: &str, password: &str) -> String {
    let reply = scene
        .call(
            Method::POST,
            "/api/v1/session",
            "",
            Some(json!({"username": username, "password": password})),
        )
        .await;
    assert_eq!(reply.status, 200, "login {username}: {:?}", reply.body);
    reply.body["token"].as_str().expect("token").to_owned()
}

/// A POST that must succeed; the answer's `id`.
async fn post(scene: &Scene, token: &str, path: &str, body: Value) -> i64 {
    let reply = scene.call(Method::POST, path, token, Some(body)).await;
    assert!(
        (200..300).contains(&reply.status),
        "{path}: {} {:?}",
        reply.status,
        reply.body
    );
    match &reply.body["id"] {
        Value::String(s) => s.parse().expect("a numeric id"),
        other => other.as_i64().expect("an id"),
    }
}

/// An auditor account `auditor` with the scene's password.
async fn auditor(scene: &Scene) {
    let admin = token(scene, "admin", ADMIN_PASSWORD).await;
    let body = json!({"username": "auditor", "password": INITIAL_PASSWORD, "roles": ["auditor"],
                      "new_person": {"name": "审计员", "department": "审计处", "category": "core"}});
    let reply = scene
        .call(Method::POST, "/api/v1/users", &admin, Some(body))
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let first = token(scene, "auditor", INITIAL_PASSWORD).await;
    let reply = scene
        .call(
            Method::POST,
            "/api/v1/session/password",
            &first,
            Some(json!({"old": INITIAL_PASSWORD, "new": PASSWORD})),
        )
        .await;
    assert_eq!(reply.status, 204, "{:?}", reply.body);
}

/// People `P-01`..`P-60` (odd ones in 一处, even ones in 二处); `SIGNOUTS` carriers each
/// signed out to the scene's borrower, every fifth for a meeting (会议); the sign-outs' ids.
async fn seed(scene: &Scene) -> Vec<i64> {
    let officer = &scene.officers[0];
    for n in 1..=PEOPLE {
        let dept = if n % 2 == 1 { "一处" } else { "二处" };
        post(
            scene,
            officer,
            "/api/v1/people",
            json!({"name": format!("P-{n:02}"), "department": dept, "category": "important",
                   "training_valid_until": "2099-01-01", "commitment_signed_on": "2020-01-01"}),
        )
        .await;
    }
    let due = scene.state.now().plus_secs(86_400).to_string();
    let mut ids = Vec::new();
    for n in 1..=SIGNOUTS {
        let carrier = post(
            scene,
            &scene.custodian,
            "/api/v1/carriers",
            json!({"control_no": format!("S-{n:03}"), "kind": "paper", "level": "C",
                   "title": "材料", "owner_unit": "一处", "tags": []}),
        )
        .await;
        let purpose = if n % 5 == 0 {
            "会议 材料"
        } else {
            "审阅"
        };
        ids.push(
            post(
                scene,
                &scene.custodian,
                "/api/v1/signouts",
                json!({"carrier_ids": [carrier.to_string()], "borrower": scene.borrower,
                       "purpose": purpose, "due_at": due, "may_leave": false}),
            )
            .await,
        );
    }
    ids
}

/// For every element matching `css`, its attribute `attr` (its text if `attr` is empty).
async fn values(session: &Session, css: &str, attr: &str) -> WdResult<Vec<String>> {
    let value = session
        .execute(
            "return [...document.querySelectorAll(arguments[0])]
                      .map(e => arguments[1] ? e.getAttribute(arguments[1]) : e.textContent.trim());",
            vec![css.into(), attr.into()],
        )
        .await?;
    Ok(value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

/// Wait until the values of `css` satisfy `check` (after a navigation); they.
async fn wait_values(
    session: &Session,
    css: &str,
    attr: &str,
    what: &str,
    check: impl Fn(&[String]) -> bool,
) -> WdResult<Vec<String>> {
    wait_for(session, what, async || {
        let shown = values(session, css, attr).await?;
        Ok(check(&shown).then_some(shown))
    })
    .await
}

/// Click the element matching `css`.
async fn click(session: &Session, css: &str) -> WdResult<()> {
    let e = session.find(css).await?;
    session.click(&e).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_sign_outs_and_the_audit_trail_page_search_and_sort() {
    browser_test("list_pages", async |scene: &Scene, session: &Session| {
        let signouts = seed(scene).await;
        auditor(scene).await;
        for width in WIDTHS {
            session.set_window_size(width, 900).await?;
            switch_to(scene, session, "officer1").await?;
            people_at(scene, session, width).await?;
            switch_to(scene, session, "custodian").await?;
            signouts_at(scene, session, width, &signouts).await?;
            switch_to(scene, session, "auditor").await?;
            audit_at(scene, session, width).await?;
        }
        Ok(())
    })
    .await;
}

/// Sign out whoever is signed in (if anyone), then sign in as `user`.
async fn switch_to(scene: &Scene, session: &Session, user: &str) -> WdResult<()> {
    if !session.find_all("#logout-submit").await?.is_empty() {
        click(session, "#logout-submit").await?;
        wait_css(session, "#login-username").await?;
    }
    sign_in(scene, session, user).await?;
    wait_css(session, "#current-user").await?;
    Ok(())
}

const PERSON_NAMES: &str = "#people-table tr.person a.person-link";

async fn people_at(scene: &Scene, session: &Session, width: u32) -> WdResult<()> {
    session.goto(&scene.url("/people")).await?;
    // By name: Bob first, then the P-.. of the seed; a next page and no "first page".
    let first = wait_values(session, PERSON_NAMES, "", "the first page of people", |r| {
        r.len() == 25
    })
    .await?;
    assert_eq!(first[0], "Bob", "by name by default at {width}px");
    assert_eq!(first[1], "P-01");
    assert!(session.find_all("#people-first").await?.is_empty());
    assert!(
        !session
            .find_all("#people-pager a#people-next[rel=next]")
            .await?
            .is_empty()
    );

    // Search with the keyboard: every P-.. matches, three pages of them.
    let q = session.find("#people-q").await?;
    session.send_keys(&q, &format!("P-{ENTER}")).await?;
    let found = wait_values(session, PERSON_NAMES, "", "the search's first page", |r| {
        r.first().map(String::as_str) == Some("P-01") && r.len() == 25
    })
    .await?;
    assert!(found.iter().all(|n| n.starts_with("P-")));
    click(session, "#people-next").await?;
    let second = wait_values(session, PERSON_NAMES, "", "the search's second page", |r| {
        r.first().map(String::as_str) == Some("P-26")
    })
    .await?;
    assert_eq!(second.len(), 25, "the next link keeps the search");
    let kept = session.find("#people-q").await?;
    assert_eq!(session.attr(&kept, "value").await?.as_deref(), Some("P-"));
    assert!(!session.find_all("#people-first").await?.is_empty());
    moment(session, "list_pages", &format!("people-{width}")).await;

    // The name header reverses the order (it is the current sort), keeping the search.
    click(session, r#"#people-table th a.sort-link[data-sort="name"]"#).await?;
    wait_css(
        session,
        r#"#people-table th[aria-sort="descending"] a[data-sort="name"]"#,
    )
    .await?;
    let down = wait_values(
        session,
        PERSON_NAMES,
        "",
        "people by name, descending",
        |r| r.first().map(String::as_str) == Some("P-60"),
    )
    .await?;
    assert_eq!(down.len(), 25);
    assert!(
        down.iter().all(|n| n.starts_with("P-")),
        "the search is kept"
    );

    // The department narrows the search to half.
    session
        .goto(&scene.url("/people?q=%E4%BA%8C%E5%A4%84"))
        .await?;
    let even = wait_values(session, PERSON_NAMES, "", "the second department", |r| {
        r.len() == 25 && r.first().map(String::as_str) == Some("P-02")
    })
    .await?;
    assert!(even.iter().all(|n| {
        let k: usize = n.trim_start_matches("P-").parse().unwrap_or(1);
        k % 2 == 0
    }));
    Ok(())
}

const SIGNOUT_ROWS: &str = "#signouts-table tr.signout";

async fn signouts_at(scene: &Scene, session: &Session, width: u32, ids: &[i64]) -> WdResult<()> {
    session.goto(&scene.url("/signouts/list")).await?;
    let newest: Vec<String> = ids.iter().rev().take(25).map(i64::to_string).collect();
    wait_values(
        session,
        SIGNOUT_ROWS,
        "data-signout-id",
        "the newest sign-outs",
        |r| r == newest.as_slice(),
    )
    .await?;
    moment(session, "list_pages", &format!("signouts-{width}")).await;
    click(session, "#signouts-pager a#signouts-next").await?;
    let rest = wait_values(
        session,
        SIGNOUT_ROWS,
        "data-signout-id",
        "the older sign-outs",
        |r| r.len() == SIGNOUTS - 25,
    )
    .await?;
    assert_eq!(rest[0], ids[SIGNOUTS - 26].to_string());
    click(session, "#signouts-first").await?;
    wait_values(
        session,
        SIGNOUT_ROWS,
        "data-signout-id",
        "the first page again",
        |r| r.len() == 25,
    )
    .await?;

    // The meetings, by the purpose's word, sent with the keyboard.
    let q = session.find("#signouts-q").await?;
    session.send_keys(&q, &format!("会议{ENTER}")).await?;
    let meetings: Vec<String> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| (i + 1) % 5 == 0)
        .map(|(_, id)| id.to_string())
        .collect();
    let down: Vec<String> = meetings.iter().rev().cloned().collect();
    wait_values(
        session,
        SIGNOUT_ROWS,
        "data-signout-id",
        "the meetings",
        |r| r == down.as_slice(),
    )
    .await?;
    // The number header sorts the other way (oldest first), keeping the search.
    click(session, r#"#signouts-table th a.sort-link[data-sort="id"]"#).await?;
    wait_css(
        session,
        r#"#signouts-table th[aria-sort="ascending"] a[data-sort="id"]"#,
    )
    .await?;
    wait_values(
        session,
        SIGNOUT_ROWS,
        "data-signout-id",
        "the meetings, oldest first",
        |r| r == meetings.as_slice(),
    )
    .await?;
    Ok(())
}

const AUDIT_ROWS: &str = "#audit-table tr.audit-entry";

fn numbers(values: &[String]) -> Vec<i64> {
    values.iter().filter_map(|v| v.parse().ok()).collect()
}

async fn audit_at(scene: &Scene, session: &Session, width: u32) -> WdResult<()> {
    session.goto(&scene.url("/audit")).await?;
    let first = wait_values(
        session,
        AUDIT_ROWS,
        "data-entry-id",
        "the newest entries",
        |r| r.len() == 50,
    )
    .await?;
    let first = numbers(&first);
    assert!(first.windows(2).all(|w| w[0] > w[1]), "newest first");
    assert!(session.find_all("#audit-first").await?.is_empty());
    click(session, "#audit-pager a#audit-next").await?;
    let older = wait_values(session, AUDIT_ROWS, "data-entry-id", "older entries", |r| {
        numbers(r)
            .first()
            .is_some_and(|id| id < first.last().unwrap_or(&0))
    })
    .await?;
    assert!(!older.is_empty());
    moment(session, "list_pages", &format!("audit-{width}")).await;
    click(session, "#audit-first").await?;
    wait_values(
        session,
        AUDIT_ROWS,
        "data-entry-id",
        "the newest again",
        |r| {
            // The trail is live (a sweep or a sign-in may append while the test reads), so
            // page one is the newer entries, if any, then the start of the page seen before.
            let again = numbers(r);
            let newer = again.iter().take_while(|id| **id > first[0]).count();
            again.len() == first.len() && again[newer..] == first[..first.len() - newer]
        },
    )
    .await?;
    assert!(session.find_all("#audit-first").await?.is_empty());

    // Filtered by an action, the next page keeps the filter.
    session
        .goto(&scene.url("/audit?action=person.create"))
        .await?;
    let created = wait_values(
        session,
        &format!("{AUDIT_ROWS} span.action"),
        "data-action",
        "the people registered",
        |r| r.len() == 50,
    )
    .await?;
    assert!(created.iter().all(|a| a == "person.create"));
    let last = numbers(&values(session, AUDIT_ROWS, "data-entry-id").await?);
    click(session, "#audit-next").await?;
    let more = wait_values(
        session,
        AUDIT_ROWS,
        "data-entry-id",
        "more people registered",
        |r| {
            numbers(r)
                .first()
                .is_some_and(|id| id < last.last().unwrap_or(&0))
        },
    )
    .await?;
    let actions = values(session, &format!("{AUDIT_ROWS} span.action"), "data-action").await?;
    assert_eq!(actions.len(), more.len());
    assert!(actions.iter().all(|a| a == "person.create"), "{actions:?}");
    Ok(())
}
