//! The custodian's register (issue 15, "the carrier list") in a real browser, at 1400 px and
//! at a tablet's 800 px: one page of 50 with a link to the next, search by title words and by
//! holder's department, sorting by a column header, and the raw EPC hex folded into a narrow
//! detail column instead of dominating each row. Assertions are on the DOM (ids and classes in
//! `server/src/web/DOM_HOOKS.md`); `CUSTOS_BROWSER_SCREENSHOTS=1` keeps screenshots.

#[allow(dead_code)] // the scene serves every browser test file; this one uses a part
#[path = "browser/scene.rs"]
mod scene;
#[path = "browser/support.rs"]
mod support;
#[allow(dead_code)]
#[path = "browser/webdriver.rs"]
mod webdriver;

use hyper::Method;
use scene::{Scene, epc};
use serde_json::{Value, json};
use support::*;
use webdriver::{ENTER, Session, WdResult};

/// Carriers registered: more than one page of the register page (50).
const CARRIERS: u16 = 56;

/// Register `CARRIERS` carriers, every seventh a meeting's minutes, each with an EPC tag.
async fn seed(scene: &Scene) {
    for n in 1..=CARRIERS {
        let title = if n % 7 == 0 {
            format!("党委会议纪要第{n}号")
        } else {
            format!("年度保密检查材料 {n}")
        };
        let reply = scene
            .call(
                Method::POST,
                "/api/v1/carriers",
                &scene.custodian,
                Some(
                    json!({"control_no": format!("L-{n:03}"), "kind": "paper", "level": "S",
                            "title": title, "owner_unit": if n % 2 == 0 { "一处" } else { "二处" },
                            "tags": [format!("epc:{}", epc(n))]}),
                ),
            )
            .await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
    }
}

/// Evaluate `script` (a `return …` body) and read it as JSON.
async fn eval(session: &Session, script: &str) -> WdResult<Value> {
    session.execute(script, Vec::new()).await
}

/// The control numbers of the rows shown, top to bottom.
async fn rows(session: &Session) -> WdResult<Vec<String>> {
    let value = eval(
        session,
        "return [...document.querySelectorAll('#carrier-table tr.carrier a.carrier-no')]
                  .map(a => a.textContent.trim());",
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

/// Wait until the rows shown are `expected` (after a navigation).
async fn wait_rows(
    session: &Session,
    what: &str,
    check: impl Fn(&[String]) -> bool,
) -> WdResult<Vec<String>> {
    wait_for(session, what, async || {
        let shown = rows(session).await?;
        Ok(check(&shown).then_some(shown))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_register_searches_sorts_and_pages_with_the_epc_in_a_detail_column() {
    browser_test(
        "lists_register",
        async |scene: &Scene, session: &Session| {
            seed(scene).await;
            sign_in(scene, session, "custodian").await?;
            wait_css(session, "#current-user").await?;
            for width in WIDTHS {
                session.set_window_size(width, 900).await?;
                register_at(scene, session, width).await?;
            }
            Ok(())
        },
    )
    .await;
}

async fn register_at(scene: &Scene, session: &Session, width: u32) -> WdResult<()> {
    visit(session, scene, "/carriers").await?;
    let first = wait_rows(session, "the first page", |r| r.len() == 50).await?;
    assert_eq!(first[0], "L-001", "registration order by default");
    assert!(session.find_all("#carrier-first").await?.is_empty());
    let next = session.find("#carrier-pager a#carrier-next").await?;
    assert_eq!(session.attr(&next, "rel").await?.as_deref(), Some("next"));

    // The EPC hex is folded away: not in the visible text, and its column stays narrow.
    let hex = epc(1).to_string();
    assert!(
        !page_shows(session, &hex).await?,
        "EPC hex visible at {width}px"
    );
    let share = eval(
        session,
        "const t = document.querySelector('#carrier-table').getBoundingClientRect().width;
         const c = document.querySelector('#carrier-table tr.carrier td.carrier-tags')
                     .getBoundingClientRect().width;
         return c / t;",
    )
    .await?;
    let share = share.as_f64().unwrap_or(1.0);
    assert!(
        share < 0.2,
        "the tag column takes {share:.2} of the table at {width}px"
    );
    let title = eval(
        session,
        "return document.querySelector('#carrier-table tr.carrier td.carrier-title')
                  .getBoundingClientRect().width;",
    )
    .await?;
    let title = title.as_f64().unwrap_or(0.0);
    assert!(
        title >= 150.0,
        "the title column is {title}px wide at {width}px"
    );
    let overflow = eval(
        session,
        "const w = document.querySelector('#carrier-table').parentElement;
         return w.scrollWidth - w.clientWidth;",
    )
    .await?;
    assert!(
        overflow.as_f64().unwrap_or(1.0) <= 1.0,
        "the register scrolls sideways at {width}px: {overflow}"
    );
    let count = text_of(session, "#carrier-table tr.carrier .tag-count").await?;
    assert_eq!(count, "1");
    // Opening the detail shows the tag.
    let summary = session
        .find("#carrier-table tr.carrier details.tag-details summary")
        .await?;
    session.click(&summary).await?;
    wait_for(session, "the opened tag detail", async || {
        Ok(page_shows(session, &hex).await?.then_some(()))
    })
    .await?;
    moment(session, "lists_register", &format!("page1-{width}")).await;

    // The next page holds the rest, and leads back to the first.
    session.click(&next).await?;
    let second = wait_rows(session, "the second page", |r| r.len() == 6).await?;
    assert_eq!(second.first().map(String::as_str), Some("L-051"));
    assert!(session.find_all("#carrier-next").await?.is_empty());
    let back = session.find("#carrier-first").await?;
    session.click(&back).await?;
    wait_rows(session, "the first page again", |r| r.len() == 50).await?;

    // Search by title words (two Chinese words, both must match), with the keyboard.
    let q = session.find("#carrier-q").await?;
    session.send_keys(&q, &format!("会议 纪要{ENTER}")).await?;
    let minutes = wait_rows(session, "the minutes", |r| r.len() == 8).await?;
    assert!(minutes.iter().all(|c| {
        let n: u16 = c.trim_start_matches("L-").parse().unwrap_or(1);
        n % 7 == 0
    }));
    let value = session.find("#carrier-q").await?;
    assert_eq!(
        session.attr(&value, "value").await?.as_deref(),
        Some("会议 纪要")
    );

    // Sorting by the control number header, then the other way, keeping the search.
    let header = session
        .find(r#"#carrier-table th a.sort-link[data-sort="control_no"]"#)
        .await?;
    session.click(&header).await?;
    wait_css(
        session,
        r#"#carrier-table th[aria-sort="ascending"] a[data-sort="control_no"]"#,
    )
    .await?;
    let header = session
        .find(r#"#carrier-table th a.sort-link[data-sort="control_no"]"#)
        .await?;
    session.click(&header).await?;
    wait_css(
        session,
        r#"#carrier-table th[aria-sort="descending"] a[data-sort="control_no"]"#,
    )
    .await?;
    let down = rows(session).await?;
    assert_eq!(down.len(), 8, "the search is kept while sorting");
    assert_eq!(down.first().map(String::as_str), Some("L-056"));
    moment(session, "lists_register", &format!("sorted-{width}")).await;

    // Search by owning unit in the sort menu's other order.
    visit(
        session,
        scene,
        "/carriers?q=%E4%B8%80%E5%A4%84&sort=control_no&order=desc",
    )
    .await?;
    let unit = wait_rows(session, "the first unit's carriers", |r| r.len() == 28).await?;
    assert_eq!(unit.first().map(String::as_str), Some("L-056"));
    Ok(())
}
