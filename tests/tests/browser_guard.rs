//! Issue 15 in a real browser, each flow at 1400 px and at a tablet's 800 px: the guard
//! console's open-alarm count, title flash, kind filter, collapsed acknowledged alarms and the
//! carrier's movement on the banner; levels that never break inside a word; the site's one
//! time format; the security officer's home page. Assertions are on the DOM (ids and classes
//! in `server/src/web/DOM_HOOKS.md`); `CUSTOS_BROWSER_SCREENSHOTS=1` keeps screenshots.

#[path = "browser/scene.rs"]
mod scene;
#[path = "browser/support.rs"]
mod support;
#[path = "browser/webdriver.rs"]
mod webdriver;

use custos_server::domain::alert::{AlertKind, NewAlert};
use custos_server::store::StoreError;
use custos_server::store::alerts::AlertRows;
use scene::Scene;
use serde_json::Value;
use support::*;
use webdriver::{Session, WdResult};

/// The two widths every flow runs at: a desk monitor and a tablet at the guard post.
const WIDTHS: [u32; 2] = [1400, 800];

/// Raise an alert of `kind` straight in the store (what a sweep would do) and tell the
/// consoles, as the sweeps do after commit.
async fn raise(scene: &Scene, kind: AlertKind, cause: &str) -> i64 {
    let alert = NewAlert::new(kind, cause.to_owned(), scene.state.now().unix_ms());
    let id = scene
        .state
        .store()
        .transact(move |tx| Ok::<_, StoreError>(tx.raise_alert(&alert)?.id()))
        .await
        .expect("raise an alert");
    scene.state.alerts().notify([id]);
    id
}

/// Evaluate `script` (a `return …` body) and read it as JSON.
async fn eval(session: &Session, script: &str) -> WdResult<Value> {
    session.execute(script, vec![]).await
}

/// Whether every element matching `css` is laid out on one line (one client rect each): a
/// level badge or a state that wraps mid-word has two.
async fn all_on_one_line(session: &Session, css: &str) -> WdResult<bool> {
    let script = format!(
        "return Array.prototype.every.call(document.querySelectorAll({css:?}), \
         function (e) {{ return e.getClientRects().length <= 1; }});"
    );
    Ok(eval(session, &script).await? == Value::Bool(true))
}

/// Whether the element matching `css` is displayed (not hidden by a filter or collapse).
async fn displayed(session: &Session, css: &str) -> WdResult<bool> {
    let script = format!(
        "var e = document.querySelector({css:?}); \
         return !!e && e.getClientRects().length > 0;"
    );
    Ok(eval(session, &script).await? == Value::Bool(true))
}

async fn guard_console_flow(scene: &Scene, session: &Session, width: u32) -> WdResult<()> {
    let test = format!("guard_console_{width}");
    session.set_window_size(width, 900).await?;
    scene.carrier("2024-0017", 17).await;
    sign_in(scene, session, "guard").await?;
    wait_path(session, scene, "/guard").await?;
    wait_css(session, r#"#live-status[data-live="on"]"#).await?;
    wait_css(session, r##"#alarm-count[data-open="0"]"##).await?;
    // The page says sound is off until a tap, every time it loads.
    wait_css(session, r#"#sound-enable[data-on="false"]"#).await?;

    // A carrier leaves without a sign-out: banner, count 1, the tab title flashes.
    let alert = scene.walk_out_with(17).await;
    let banner = format!(r#"#banners > .alert-banner[data-alert-id="{alert}"]"#);
    wait_css(session, &banner).await?;
    wait_css(session, r##"#alarm-count[data-open="1"]"##).await?;
    wait_css(session, r#"#guard[data-flashing="true"]"#).await?;
    wait_for(session, "the tab title to flash the count", async || {
        let title = eval(session, "return document.title;").await?;
        Ok(title
            .as_str()
            .is_some_and(|t| t.starts_with("(1)"))
            .then_some(()))
    })
    .await?;
    wait_css(
        session,
        &format!(r#"{banner} .fact[data-field="movement"] [data-movement="left"]"#),
    )
    .await?;
    assert_eq!(
        session
            .attr(&session.find(&banner).await?, "data-group")
            .await?
            .as_deref(),
        Some("gate")
    );
    // The newest open alarm is in view, at 800 px too.
    let in_view = eval(
        session,
        &format!(
            "var r = document.querySelector({banner:?}).getBoundingClientRect(); \
             return r.top < window.innerHeight && r.bottom > 0;"
        ),
    )
    .await?;
    assert_eq!(
        in_view,
        Value::Bool(true),
        "the banner is on screen at {width} px"
    );
    // Levels, states and kinds never break inside a word.
    assert!(all_on_one_line(session, ".level, .state, .severity, .alert-kind").await?);
    // Times built by the script are in the site's one format (zh: YYYY-MM-DD HH:MM:SS).
    let shown = text_of(
        session,
        &format!(r#"{banner} .fact[data-field="time"] time"#),
    )
    .await?;
    assert!(
        shown.len() == 19 && shown.as_bytes()[4] == b'-' && shown.as_bytes()[10] == b' ',
        "time {shown:?}"
    );
    assert!(
        eval(session, "return document.body.getAttribute('data-tz');")
            .await?
            .is_string()
    );
    moment(session, &test, "banner").await;

    // A reminder arrives: its own group, and the count goes to 2.
    let missing = raise(scene, AlertKind::Missing, "missing:carrier:17").await;
    let card = format!(r#"#alert-list > .alert-card[data-alert-id="{missing}"]"#);
    wait_css(session, &format!(r#"{card}[data-group="reminder"]"#)).await?;
    wait_css(session, r##"#alarm-count[data-open="2"]"##).await?;

    // Filter: gate alarms hide the reminder; reminders hide the banner.
    let gate_filter = session
        .find(r#"#alert-filter button.filter[data-group="gate"]"#)
        .await?;
    session.click(&gate_filter).await?;
    wait_css(session, r#"#guard[data-filter="gate"]"#).await?;
    assert!(
        !displayed(session, &card).await?,
        "the reminder is filtered out"
    );
    assert!(displayed(session, &banner).await?);
    let reminder_filter = session
        .find(r#"#alert-filter button.filter[data-group="reminder"]"#)
        .await?;
    session.click(&reminder_filter).await?;
    wait_css(session, r#"#guard[data-filter="reminder"]"#).await?;
    assert!(
        !displayed(session, &banner).await?,
        "the banner is filtered out"
    );
    assert!(displayed(session, &card).await?);
    let all = session
        .find(r#"#alert-filter button.filter[data-group="all"]"#)
        .await?;
    session.click(&all).await?;
    wait_css(session, r#"#guard[data-filter="all"]"#).await?;
    // Touching the page stops the flashing.
    wait_css(session, r#"#guard[data-flashing="false"]"#).await?;

    // Acknowledged: one line, the count drops, the focus stays in the alert.
    let ack = session
        .find(&format!(r#"button.ack[data-alert-id="{alert}"]"#))
        .await?;
    session.click(&ack).await?;
    wait_css(session, &format!(r#"{banner}[data-state="acknowledged"]"#)).await?;
    wait_css(session, r##"#alarm-count[data-open="1"]"##).await?;
    assert!(!displayed(session, &format!("{banner} .facts")).await?);
    assert!(displayed(session, &format!("{banner} button.expand")).await?);
    let height = eval(
        session,
        &format!("return document.querySelector({banner:?}).getBoundingClientRect().height;"),
    )
    .await?;
    assert!(
        height.as_f64().is_some_and(|h| h < 140.0),
        "a collapsed alarm is one line, not a block ({height} px at {width} px)"
    );
    let focus = eval(
        session,
        &format!(
            "var a = document.activeElement; \
             return !!a && document.querySelector({banner:?}).contains(a);"
        ),
    )
    .await?;
    assert_eq!(
        focus,
        Value::Bool(true),
        "focus is not lost after the update"
    );
    // Details open it again.
    let expand = session.find(&format!("{banner} button.expand")).await?;
    session.click(&expand).await?;
    wait_css(session, &format!(r#"{banner}[data-expanded="true"]"#)).await?;
    assert!(displayed(session, &format!("{banner} .facts")).await?);
    moment(session, &test, "acknowledged").await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_console_counts_flashes_filters_and_collapses_alarms() {
    for width in WIDTHS {
        browser_test(&format!("guard_console_{width}"), async |scene, session| {
            guard_console_flow(scene, session, width).await
        })
        .await;
    }
}

async fn officer_home_flow(scene: &Scene, session: &Session, width: u32) -> WdResult<()> {
    session.set_window_size(width, 900).await?;
    scene.carrier("2024-0017", 17).await;
    scene.walk_out_with(17).await;
    sign_in(scene, session, "officer1").await?;
    // The officer's home is "what needs me now".
    wait_path(session, scene, "/officer").await?;
    wait_css(
        session,
        r#"#officer-home section.home-block[data-block="alarms"][data-count="1"]"#,
    )
    .await?;
    for block in ["approvals", "missing", "overdue", "training"] {
        wait_css(
            session,
            &format!(r#"#officer-home section.home-block[data-block="{block}"]"#),
        )
        .await?;
    }
    let kind = text_of(
        session,
        r#"section[data-block="alarms"] li[data-kind] .alert-kind"#,
    )
    .await?;
    assert!(!kind.is_empty());
    // Bob has no training on record: he needs the officer.
    wait_css(
        session,
        r#"section[data-block="training"] li[data-expired="true"]"#,
    )
    .await?;
    // Headers and statuses never break inside a word, here and on the people list.
    assert!(all_on_one_line(session, ".level, .state, th, .count").await?);
    session.goto(&scene.url("/people")).await?;
    wait_css(session, "#people-table").await?;
    assert!(all_on_one_line(session, "th, .level").await?);
    moment(session, &format!("officer_home_{width}"), "home").await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_officer_home_page_says_what_needs_the_officer_now() {
    for width in WIDTHS {
        browser_test(&format!("officer_home_{width}"), async |scene, session| {
            officer_home_flow(scene, session, width).await
        })
        .await;
    }
}
