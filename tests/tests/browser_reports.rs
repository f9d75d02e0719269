//! Printable reports in a real browser: a custodian opens the report list, opens the carrier
//! register (long enough for several pages) and headless Chromium prints it to PDF through
//! WebDriver (`POST /session/{id}/print`, Chromium's `Page.printToPDF`). The PDF must have
//! several pages, each A4 (595 × 842 pt), and the page shows the unit, title, time, every
//! row and the signature lines. The overdue and missing reports print too (one page each
//! when empty), and a guard is refused the reports.

// The shared browser modules carry helpers other browser tests use.
#![allow(dead_code)]

#[path = "browser/scene.rs"]
mod scene;
#[path = "browser/support.rs"]
mod support;
#[path = "browser/webdriver.rs"]
mod webdriver;

use scene::Scene;
use serde_json::json;
use support::*;
use webdriver::Session;

/// A4 in points (1 pt = 1/72 in): 210 mm × 297 mm.
const A4_PT: (f64, f64) = (595.28, 841.89);

/// The pages of a PDF: each `/Type /Page` dictionary (not `/Pages`) and its `/MediaBox`.
fn pdf_pages(pdf: &[u8]) -> Vec<Option<(f64, f64)>> {
    let text = String::from_utf8_lossy(pdf);
    let mut pages = Vec::new();
    let mut rest = text.as_ref();
    while let Some(i) = rest.find("/Type /Page") {
        let after = &rest[i + "/Type /Page".len()..];
        rest = after;
        if after.starts_with('s') {
            continue;
        }
        // The MediaBox of this page's dictionary (Chromium writes it in the same object).
        let end = after.find("endobj").unwrap_or(after.len());
        let object = &after[..end];
        let before_end = text.len() - after.len();
        let start = text[..before_end].rfind(" obj").unwrap_or(0);
        let dict = &text[start..before_end + end];
        pages.push(media_box(dict).or_else(|| media_box(object)));
    }
    pages
}

fn media_box(dict: &str) -> Option<(f64, f64)> {
    let at = dict.find("/MediaBox")?;
    let open = dict[at..].find('[')? + at + 1;
    let close = dict[open..].find(']')? + open;
    let numbers: Vec<f64> = dict[open..close]
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    match numbers[..] {
        [x0, y0, x1, y1] => Some((x1 - x0, y1 - y0)),
        _ => None,
    }
}

fn assert_a4(pdf: &[u8], at_least: usize, what: &str) {
    assert!(pdf.starts_with(b"%PDF-"), "{what}: not a PDF");
    let pages = pdf_pages(pdf);
    assert!(
        pages.len() >= at_least,
        "{what}: {} page(s), wanted {at_least}+",
        pages.len()
    );
    for (i, size) in pages.iter().enumerate() {
        let (w, h) = size.unwrap_or_else(|| panic!("{what}: page {i} has no MediaBox"));
        assert!(
            (w - A4_PT.0).abs() < 2.0 && (h - A4_PT.1).abs() < 2.0,
            "{what}: page {i} is {w} × {h} pt, not A4"
        );
    }
}

async fn print_a4(session: &Session) -> webdriver::WdResult<Vec<u8>> {
    session.print_pdf(21.0, 29.7).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_register_prints_to_a_multi_page_a4_pdf() {
    browser_test_at_widths(
        "reports_register",
        async |scene: &Scene, session: &Session, _width: u32| {
            for n in 1..=70_u16 {
                scene.carrier(&format!("2026-{n:04}"), n).await;
            }
            sign_in(scene, session, "custodian").await?;
            wait_css(session, "#current-user").await?;
            visit(session, scene, "/reports").await?;
            let link = wait_css(
                session,
                r#"#report-list a.report-link[data-report="register"]"#,
            )
            .await?;
            session.click(&link).await?;
            wait_css(session, r#"main[data-report="register"] #report-table"#).await?;
            assert_eq!(
                text_of(session, "#report-unit").await?,
                "保密办公室 Secrecy Office"
            );
            assert!(!text_of(session, "#report-title").await?.is_empty());
            assert!(!text_of(session, "#report-made-at").await?.is_empty());
            assert_eq!(text_of(session, "#report-count").await?, "70");
            assert_eq!(
                session
                    .find_all("#report-table tbody tr.report-row")
                    .await?
                    .len(),
                70
            );
            assert_eq!(
                session
                    .find_all("#report-signatures .signature")
                    .await?
                    .len(),
                3
            );
            assert!(page_shows(session, "2026-0070").await?);
            moment(session, "reports_register", "screen").await;

            let pdf = print_a4(session).await?;
            assert_a4(&pdf, 2, "register");

            for report in ["overdue", "missing"] {
                visit(session, scene, &format!("/reports/{report}")).await?;
                wait_css(
                    session,
                    &format!(r#"main[data-report="{report}"] #report-empty"#),
                )
                .await?;
                let pdf = print_a4(session).await?;
                assert_a4(&pdf, 1, report);
            }
            Ok(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_cannot_open_the_reports() {
    browser_test_at_widths(
        "reports_guard",
        async |scene: &Scene, session: &Session, _width: u32| {
            sign_in(scene, session, "guard").await?;
            wait_css(session, "#current-user").await?;
            assert!(
                session
                    .find_all(r#"nav.mainnav a[href="/reports"]"#)
                    .await?
                    .is_empty(),
                "no reports entry for a guard"
            );
            visit(session, scene, "/reports/register").await?;
            wait_css(session, "#message").await?;
            assert!(!page_shows(session, "Reactor drawings").await?);
            Ok(())
        },
    )
    .await;
}

/// `POST` over the API as `token`, expecting `status`; the answer's body.
async fn post(
    scene: &Scene,
    token: &str,
    path: &str,
    body: Option<serde_json::Value>,
    status: u16,
) -> serde_json::Value {
    let reply = scene.call(hyper::Method::POST, path, token, body).await;
    assert_eq!(reply.status, status, "POST {path}: {:?}", reply.body);
    reply.body
}

fn id_of(body: &serde_json::Value) -> String {
    body["id"].as_str().expect("an id").to_owned()
}

/// Open `path` from the link `link` on the record's page `page`, wait for the report and
/// print it to A4.
async fn print_from(
    scene: &Scene,
    session: &Session,
    page: &str,
    link: &str,
    report: &str,
) -> webdriver::WdResult<Vec<u8>> {
    session.goto(&scene.url(page)).await?;
    let link = wait_css(session, link).await?;
    session.click(&link).await?;
    wait_css(
        session,
        &format!(r#"main[data-report="{report}"] #report-table"#),
    )
    .await?;
    assert_eq!(
        text_of(session, "#report-unit").await?,
        "保密办公室 Secrecy Office"
    );
    assert!(!text_of(session, "#report-made-at").await?.is_empty());
    assert!(
        !page_shows(session, "Reactor drawings").await?,
        "{report}: a record's report never shows a title"
    );
    print_a4(session).await
}

/// The three records' reports: a closed stocktake (one of two loans seen, the other settled
/// as a correction, signed by the custodian who closed it), a year-end collection of the
/// borrower's department (one loan kept, one still open), and a witnessed destruction with
/// its place; each reached from its own page and printed to A4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stocktake_a_collection_and_a_destruction_print_to_a4() {
    browser_test(
        "reports_records",
        async |scene: &Scene, session: &Session| {
            let officer = &scene.officers[0];
            let kept = scene.carrier("2026-0501", 501).await;
            let away = scene.carrier("2026-0502", 502).await;
            let mut signouts = Vec::new();
            for carrier in [&kept, &away] {
                let signout = scene.approved_sign_out(carrier).await;
                post(
                    scene,
                    &scene.custodian,
                    &format!("/api/v1/signouts/{signout}/issue"),
                    None,
                    200,
                )
                .await;
                signouts.push(signout);
            }
            let collection = id_of(
                &post(
                    scene,
                    officer,
                    "/api/v1/collections",
                    Some(json!({"year": 2026})),
                    201,
                )
                .await,
            );
            let stocktake = id_of(
                &post(
                    scene,
                    &scene.custodian,
                    "/api/v1/stocktakes",
                    Some(json!({"scope": {"custodian_id": scene.borrower}})),
                    201,
                )
                .await,
            );
            let st = format!("/api/v1/stocktakes/{stocktake}");
            post(
                scene,
                &scene.custodian,
                &format!("{st}/scans"),
                Some(json!({"tags": ["2026-0501"]})),
                200,
            )
            .await;
            post(scene, &scene.custodian, &format!("{st}/close"), None, 200).await;
            post(
                scene,
                &scene.custodian,
                &format!("{st}/resolutions"),
                Some(json!({"carrier_id": away, "resolution": "correction",
                            "note": "借用人出差，电话确认在手"})),
                200,
            )
            .await;
            post(
                scene,
                &scene.custodian,
                &format!("/api/v1/signouts/{}/return", signouts[0]),
                None,
                200,
            )
            .await;
            post(
                scene,
                &scene.custodian,
                &format!("/api/v1/collections/{collection}/items/{kept}"),
                Some(json!({"outcome": "kept"})),
                200,
            )
            .await;

            // A destruction witnessed by officer1's person and Bob.
            let doomed = scene.carrier("2026-0503", 503).await;
            let destruction = id_of(
                &post(
                    scene,
                    &scene.custodian,
                    "/api/v1/destructions",
                    Some(json!({"carrier_ids": [doomed], "method": "shred", "reason": "保管期满"})),
                    201,
                )
                .await,
            );
            for o in &scene.officers {
                post(
                    scene,
                    o,
                    &format!("/api/v1/destructions/{destruction}/approve"),
                    None,
                    200,
                )
                .await;
            }
            let people = scene
                .call(hyper::Method::GET, "/api/v1/people", officer, None)
                .await;
            let officer_person = people
                .body
                .as_array()
                .expect("a list of people")
                .iter()
                .find(|p| p["name"] == "officer1")
                .map(id_of)
                .expect("officer1's person");
            let at = scene.state.now().to_string();
            post(
                scene,
                &scene.custodian,
                &format!("/api/v1/destructions/{destruction}/record"),
                Some(
                    json!({"witnesses": [officer_person, scene.walker], "at": at,
                            "count": 1, "place": "保密办碎纸室"}),
                ),
                200,
            )
            .await;

            sign_in(scene, session, "custodian").await?;
            wait_css(session, "#current-user").await?;

            // The stocktake: two expected, one seen, one settled as a correction.
            let pdf = print_from(
                scene,
                session,
                &format!("/stocktakes/{stocktake}"),
                "#stocktake-report-link",
                "stocktake",
            )
            .await?;
            assert_a4(&pdf, 1, "stocktake");
            assert_eq!(text_of(session, ".count-expected").await?, "2");
            assert_eq!(text_of(session, ".count-seen").await?, "1");
            assert_eq!(text_of(session, ".count-missing").await?, "1");
            assert_eq!(text_of(session, "#report-closed-by").await?, "custodian");
            assert_eq!(
                session
                    .find_all(r#"tr.report-row .stocktake-result[data-result="seen"]"#)
                    .await?
                    .len(),
                1
            );
            assert!(
                text_of(
                    session,
                    r#"tr.report-row .resolution[data-resolution="correction"]"#
                )
                .await?
                .contains("借用人出差")
            );
            assert_eq!(
                text_of(session, "#report-signatures .signature.named .signer").await?,
                "custodian",
                "the closer signs by name"
            );
            moment(session, "reports_records", "stocktake").await;

            // The collection, for the borrower's department: one kept, one still open.
            session
                .goto(&scene.url(&format!("/collections/{collection}")))
                .await?;
            let department = wait_css(
                session,
                r#"tr.department[data-department="研发部"] a.department-report"#,
            )
            .await?;
            session.click(&department).await?;
            wait_css(session, r#"main[data-report="collection"] #report-table"#).await?;
            assert_eq!(text_of(session, "#report-department").await?, "研发部");
            assert_eq!(text_of(session, "#report-year").await?, "2026");
            assert_eq!(
                session.find_all("tr.report-row").await?.len(),
                2,
                "both loans of the department"
            );
            assert_eq!(
                session
                    .find_all(r#"tr.report-row .outcome[data-outcome="kept"]"#)
                    .await?
                    .len(),
                1
            );
            assert_eq!(
                session
                    .find_all(r#"tr.report-row .outcome[data-outcome="open"]"#)
                    .await?
                    .len(),
                1
            );
            assert_eq!(
                text_of(session, r#"#report-departments tr.department .kept"#).await?,
                "1"
            );
            assert_eq!(
                session
                    .find_all("#report-signatures .signature")
                    .await?
                    .len(),
                3
            );
            assert_a4(&print_a4(session).await?, 1, "collection");
            moment(session, "reports_records", "collection").await;

            // The destruction record: carriers, place, count and both witnesses by name.
            let pdf = print_from(
                scene,
                session,
                &format!("/carriers/{doomed}"),
                &format!(r#"li.request[data-request-id="{destruction}"] a.destruction-report"#),
                "destruction",
            )
            .await?;
            assert_a4(&pdf, 1, "destruction");
            assert!(page_shows(session, "2026-0503").await?);
            assert_eq!(text_of(session, "#report-place").await?, "保密办碎纸室");
            assert_eq!(text_of(session, "#report-counted").await?, "1");
            let signers = session
                .find_all("#report-signatures .signature.named .signer")
                .await?;
            assert_eq!(signers.len(), 2, "two witnesses sign");
            let mut names = Vec::new();
            for s in &signers {
                names.push(session.text(s).await?);
            }
            assert!(names[0].starts_with("officer1"), "{names:?}");
            assert!(names[1].starts_with("Bob"), "{names:?}");
            assert_eq!(
                session
                    .find_all(r#"#report-facts .report-fact[data-field="approvals"] .approval"#)
                    .await?
                    .len(),
                2,
                "top secret: two approvals"
            );
            moment(session, "reports_records", "destruction").await;
            Ok(())
        },
    )
    .await;
}
