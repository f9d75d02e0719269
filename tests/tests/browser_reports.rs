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
