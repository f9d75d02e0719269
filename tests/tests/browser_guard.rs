//! Issue 15 in a real browser, each flow at 1400 px and at a tablet's 800 px: the guard
//! console's open-alarm count, title flash, kind filter, collapsed acknowledged alarms and the
//! carrier's movement on the banner; levels that never break inside a word; the site's one
//! time format; the security officer's home page. Assertions are on the DOM (ids and classes
//! in `server/src/web/DOM_HOOKS.md`); `CUSTOS_BROWSER_SCREENSHOTS=1` keeps screenshots.

#[path = "browser/scene.rs"]
#[allow(dead_code)]
mod scene;
#[path = "browser/support.rs"]
mod support;
#[path = "browser/webdriver.rs"]
#[allow(dead_code)]
mod webdriver;

use custos_server::domain::alert::{AlertKind, NewAlert};
use custos_server::store::StoreError;
use hyper::Method;
use scene::Scene;
use serde_json::Value;
use support::*;
use webdriver::{ENTER, Session, WdResult};

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

/// Click the element matching `css` after scrolling it to the middle of the window, as a
/// person scrolls a button out from under the console's sticky bar before tapping it.
async fn tap(session: &Session, css: &str) -> WdResult<()> {
    let e = wait_css(session, css).await?;
    session
        .execute(
            "document.querySelector(arguments[0]).scrollIntoView({block: 'center'});",
            vec![css.into()],
        )
        .await?;
    session.click(&e).await
}

/// Wait until `#alarm-count` shows exactly the open alarms listed, and at least `min`.
async fn counted(session: &Session, min: u64) -> WdResult<()> {
    let script = "var n = document.querySelectorAll('#banners > li[data-state=\"open\"], \
                  #alert-list > li[data-state=\"open\"]').length; \
                  var shown = document.querySelector('#alarm-count .count').textContent; \
                  return document.getElementById('alarm-count').getAttribute('data-open') === String(n) \
                  && shown === String(n) ? n : -1;";
    wait_for(
        session,
        "the open-alarm count to match the list",
        async || {
            let n = eval(session, script).await?;
            Ok(n.as_i64()
                .is_some_and(|n| n >= 0 && n.unsigned_abs() >= min)
                .then_some(()))
        },
    )
    .await
}

async fn guard_console_flow(scene: &Scene, session: &Session, width: u32) -> WdResult<()> {
    let test = format!("guard_console_{width}");
    session.set_window_size(width, 900).await?;
    scene.carrier("2024-0017", 17).await;
    sign_in(scene, session, "guard").await?;
    wait_path(session, scene, "/guard").await?;
    wait_css(session, r#"#live-status[data-live="on"]"#).await?;
    // The count always equals the open alarms listed (a sweep may add a silent reader at
    // any moment, so the numbers themselves are not fixed).
    counted(session, 0).await?;
    // The sound button always says whether sound is on (off until a tap where autoplay is
    // blocked; headless Chromium allows it, so only the state's presence is pinned here).
    wait_css(session, "#sound-enable[data-on]").await?;

    // A carrier leaves without a sign-out: banner, count 1, the tab title flashes.
    let alert = scene.walk_out_with(17).await;
    let banner = format!(r#"#banners > .alert-banner[data-alert-id="{alert}"]"#);
    wait_css(session, &banner).await?;
    counted(session, 1).await?;
    wait_css(session, r#"#guard[data-flashing="true"]"#).await?;
    wait_for(session, "the tab title to flash the count", async || {
        let title = eval(session, "return document.title;").await?;
        let n = eval(
            session,
            "return document.getElementById('alarm-count').getAttribute('data-open');",
        )
        .await?;
        let flashed = format!("({})", n.as_str().unwrap_or("?"));
        Ok(title
            .as_str()
            .is_some_and(|t| t.starts_with(&flashed))
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
    // The alert names the person whose badge was read (the banner shows the name).
    let reply = scene
        .call(
            Method::GET,
            &format!("/api/v1/alerts/{alert}"),
            &scene.guard,
            None,
        )
        .await;
    assert_eq!(
        reply.body["person_id"],
        scene.walker.as_str(),
        "{:?}",
        reply.body
    );
    // Places and people, not ids: the gate's zones, the badge holder's name.
    let place = text_of(
        session,
        &format!(r#"{banner} .fact[data-field="gate"] .place"#),
    )
    .await?;
    assert!(place.contains("保密室"), "gate place {place:?}");
    let holders = wait_css(session, "#passage-list .badge-holders").await?;
    let holders = session.text(&holders).await?;
    assert!(holders.contains("Bob"), "passage badge holders {holders:?}");
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
    // zh "2026-03-01 16:05:09", en "1 Mar 2026 16:05:09": never ISO, never AM/PM.
    let clock = shown.rsplit(' ').next().unwrap_or_default();
    assert!(
        clock.len() == 8
            && clock.as_bytes()[2] == b':'
            && clock.as_bytes()[5] == b':'
            && !shown.contains('T')
            && !shown.contains('M'),
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
    counted(session, 2).await?;

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
    // Touching the page stops the flashing. A sweep may raise a silent reader at any moment,
    // which rightly flashes again: so touch, look, and touch again until a touch is the last
    // thing that happened (a page that never stops flashing still fails here).
    wait_for(session, "a touch to stop the flashing", async || {
        session.click(&all).await?;
        let flashing = eval(
            session,
            "return document.getElementById('guard').getAttribute('data-flashing');",
        )
        .await?;
        Ok((flashing == Value::String("false".into())).then_some(()))
    })
    .await?;

    // Acknowledged: one line, the count drops, the focus stays in the alert.
    tap(session, &format!(r#"button.ack[data-alert-id="{alert}"]"#)).await?;
    wait_css(session, &format!(r#"{banner}[data-state="acknowledged"]"#)).await?;
    counted(session, 1).await?;
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
    // Details open it again, from the keyboard.
    let expand = session.find(&format!("{banner} button.expand")).await?;
    session.send_keys(&expand, ENTER).await?;
    wait_css(session, &format!(r#"{banner}[data-expanded="true"]"#)).await?;
    assert!(displayed(session, &format!("{banner} .facts")).await?);
    moment(session, &test, "acknowledged").await;
    Ok(())
}

/// A browser that blocks autoplay (as desktop Chromium does): every load of the console shows
/// "tap to enable sound" on the sound button, and a tap turns sound on.
async fn blocked_sound_flow(scene: &Scene, session: &Session) -> WdResult<()> {
    sign_in(scene, session, "guard").await?;
    wait_path(session, scene, "/guard").await?;
    for width in WIDTHS {
        session.set_window_size(width, 900).await?;
        // A fresh document with no user gesture in its history: leave the site first, so
        // the earlier tap does not carry over to the same-origin load.
        session.goto("about:blank").await?;
        visit(session, scene, "/guard").await?;
        let blocked = r#"#sound-enable[data-on="false"][data-blocked="true"]"#;
        wait_css(session, blocked).await?;
        assert!(
            text_of(session, "#sound-enable")
                .await?
                .contains("Tap to enable alarm sound"),
            "the button asks for a tap at {width} px"
        );
        assert!(
            displayed(session, "#sound-enable").await?,
            "the tap request is on screen at {width} px"
        );
        tap(session, "#sound-enable").await?;
        wait_css(
            session,
            r#"#sound-enable[data-on="true"][data-blocked="false"]"#,
        )
        .await?;
        assert_eq!(text_of(session, "#sound-enable").await?, "Alarm sound on");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_that_blocks_autoplay_asks_for_a_tap_on_every_load() {
    browser_test_with(
        "guard_sound_blocked",
        webdriver::BLOCK_AUTOPLAY,
        async |scene, session| blocked_sound_flow(scene, session).await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_console_counts_flashes_filters_and_collapses_alarms() {
    browser_test_at_widths("guard_console", guard_console_flow).await;
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
        r#"#officer-home section.home-block[data-block="alarms"]:not([data-count="0"])"#,
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
    visit(session, scene, "/people").await?;
    wait_css(session, "#people-table").await?;
    assert!(all_on_one_line(session, "th, .level").await?);
    moment(session, &format!("officer_home_{width}"), "home").await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_officer_home_page_says_what_needs_the_officer_now() {
    browser_test_at_widths("officer_home", officer_home_flow).await;
}

async fn signout_form_flow(scene: &Scene, session: &Session, width: u32) -> WdResult<()> {
    session.set_window_size(width, 900).await?;
    let carrier = scene.carrier("2024-0042", 42).await;
    sign_in(scene, session, "custodian").await?;
    wait_path(session, scene, "/desk").await?;
    visit(session, scene, "/signouts/new").await?;
    let tick = wait_css(session, &format!("#signout-carrier-{carrier}")).await?;
    session.click(&tick).await?;
    // A top-secret carrier proposes the same-day due time of its level.
    let due = wait_css(session, r#"#signout-due[data-proposed="true"]"#).await?;
    let proposed = session.attr(&due, "data-default-hours-ts").await?;
    assert_eq!(proposed.as_deref(), Some("8"));
    // The borrower by typed name, not a list of everyone; the rules answer before submitting:
    // Bob has no training or commitment on record.
    let borrower = session.find("#signout-borrower").await?;
    session.send_keys(&borrower, "Bob").await?;
    wait_css(
        session,
        r#"#signout-check[data-state="refused"] li.refusal[data-code="training_expired"]"#,
    )
    .await?;
    moment(session, &format!("signout_check_{width}"), "refused").await;
    // 林 passes every rule.
    session
        .execute(
            "document.getElementById('signout-borrower').value = '';",
            vec![],
        )
        .await?;
    session.send_keys(&borrower, "林").await?;
    wait_css(session, r#"#signout-check[data-state="ok"]"#).await?;
    // A name nobody has is said as such.
    session
        .execute(
            "document.getElementById('signout-borrower').value = '';",
            vec![],
        )
        .await?;
    session.send_keys(&borrower, "Nobody").await?;
    wait_css(session, r#"#signout-check[data-state="unknown"]"#).await?;

    // The label print layouts.
    visit(
        session,
        scene,
        &format!("/labels?layout=roll&ids={carrier}"),
    )
    .await?;
    wait_css(
        session,
        r#"#label-layout[data-layout="roll"][data-count="1"]"#,
    )
    .await?;
    visit(
        session,
        scene,
        &format!("/labels?layout=sheet&ids={carrier},{carrier}"),
    )
    .await?;
    wait_css(
        session,
        r#"#label-layout[data-layout="sheet"][data-count="2"]"#,
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_out_form_finds_the_borrower_and_checks_the_rules_before_submitting() {
    browser_test_at_widths("signout_check", signout_form_flow).await;
}

/// Sign in through the form with a password of one's own.
async fn sign_in_with(
    scene: &Scene,
    session: &Session,
    username: &str,
    password: &str,
) -> WdResult<()> {
    visit(session, scene, "/login").await?;
    let user = wait_css(session, "#login-username").await?;
    session.send_keys(&user, username).await?;
    let field = session.find("#login-password").await?;
    session.send_keys(&field, password).await?;
    let submit = session.find("#login-submit").await?;
    session.click(&submit).await
}

/// Fill the field `css` with `text` (cleared first).
async fn fill(session: &Session, css: &str, text: &str) -> WdResult<()> {
    let field = wait_css(session, css).await?;
    session
        .execute(
            "document.querySelector(arguments[0]).value = '';",
            vec![css.into()],
        )
        .await?;
    session.send_keys(&field, text).await
}

/// The administrator's first-run steps, then a new auditor reading the trail in words.
async fn admin_and_auditor_flow(scene: &Scene, session: &Session, width: u32) -> WdResult<()> {
    session.set_window_size(width, 900).await?;
    scene.carrier("2024-0017", 17).await;
    scene.walk_out_with(17).await;
    sign_in_with(scene, session, "admin", scene::ADMIN_PASSWORD).await?;
    wait_path(session, scene, "/admin/start").await?;
    wait_css(
        session,
        r#"#setup-steps li.step[data-step="zones"][data-done="true"]"#,
    )
    .await?;
    wait_css(
        session,
        r#"#setup-steps li.step[data-step="auditor"][data-done="false"]"#,
    )
    .await?;
    wait_css(
        session,
        r#"#next-step[data-step="auditor"] a[href="/admin/users"]"#,
    )
    .await?;
    visit(session, scene, "/admin/users").await?;
    fill(session, "#user-username", "auditor").await?;
    fill(session, "#user-password", "temporary passphrase 2").await?;
    // An auditor's account names its holder on the register of people.
    fill(session, "#user-person-name", "审计员 auditor").await?;
    fill(session, "#user-person-department", "审计处").await?;
    tap(session, "#user-role-auditor").await?;
    tap(session, "#user-submit").await?;
    wait_css(session, "#flash").await?;
    visit(session, scene, "/admin/start").await?;
    wait_css(session, r#"#first-run[data-complete="true"]"#).await?;

    tap(session, "#logout-submit").await?;
    wait_css(session, "#login-username").await?;
    sign_in_with(scene, session, "auditor", "temporary passphrase 2").await?;
    fill(session, "#password-old", "temporary passphrase 2").await?;
    fill(session, "#password-new", scene::PASSWORD).await?;
    fill(session, "#password-confirm", scene::PASSWORD).await?;
    tap(session, "#password-submit").await?;
    wait_css(session, "#current-user").await?;
    visit(session, scene, "/audit").await?;
    // Actions in words (the code only in the title), subjects by name with a link.
    let action = wait_css(
        session,
        r#"#audit-table span.action[data-action="carrier.create"]"#,
    )
    .await?;
    let words = session.text(&action).await?;
    assert!(
        !words.contains('.') && !words.is_empty(),
        "action {words:?}"
    );
    let subject = session
        .find(r#"#audit-table a.subject[data-subject^="carrier:"]"#)
        .await?;
    assert_eq!(session.text(&subject).await?, "2024-0017");
    assert!(
        session
            .attr(&subject, "href")
            .await?
            .is_some_and(|h| h.starts_with("/audit?subject=carrier"))
    );
    // Device batches are hidden until asked for.
    let hidden = wait_css(session, "#audit-batches").await?;
    let n: u32 = session
        .attr(&hidden, "data-hidden")
        .await?
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(n >= 1, "the gate's batch is hidden");
    assert!(
        session
            .find_all(r#"span.action[data-action="device.batch"]"#)
            .await?
            .is_empty()
    );
    tap(session, "#audit-show-batches").await?;
    wait_css(
        session,
        r#"#audit-table span.action[data-action="device.batch"]"#,
    )
    .await?;
    // The action filter is a list of named actions.
    visit(session, scene, "/audit").await?;
    let option = wait_css(session, r#"#audit-action option[value="carrier.create"]"#).await?;
    session.click(&option).await?;
    tap(session, "#audit-apply").await?;
    wait_css(
        session,
        r#"#audit-action option[value="carrier.create"][selected]"#,
    )
    .await?;
    assert!(
        session
            .find_all(r#"#audit-table span.action:not([data-action="carrier.create"])"#)
            .await?
            .is_empty()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_is_guided_and_the_auditor_reads_words() {
    browser_test_at_widths("admin_auditor", admin_and_auditor_flow).await;
}
