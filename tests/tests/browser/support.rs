//! What every browser test uses: a fresh server + chromedriver + Chromium per test, waits that
//! poll with a deadline, a screenshot of the page on failure, signing in through the form.
//! Each browser test file includes this with `#[path = "browser/support.rs"] mod support;`
//! (next to `scene` and `webdriver`), so areas keep their tests in their own files.
#![allow(dead_code)] // each test binary uses a different part

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::scene::{PASSWORD, Scene};
use crate::webdriver::{Driver, Element, Session, WdResult};
use futures_util::FutureExt;

/// How long any one thing may take to show up on the page.
pub const WAIT: Duration = Duration::from_secs(10);
/// How often a wait looks again.
pub const POLL: Duration = Duration::from_millis(50);
/// The widths every browser flow runs at: a desk monitor and a tablet at the guard post.
pub const WIDTHS: [u32; 2] = [1400, 800];
/// The window height the flows run at.
pub const HEIGHT: u32 = 900;

/// `<target>/browser-screenshots`, next to the `tmp` directory cargo gives integration tests.
pub fn screenshot_dir() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent()
        .map(|target| target.join("browser-screenshots"))
        .unwrap_or(tmp)
}

/// Run one browser test: a fresh server, chromedriver and Chromium session; on a panic or a
/// WebDriver error a screenshot of the current page, then the failure.
pub async fn browser_test<F>(name: &str, flow: F)
where
    F: AsyncFnOnce(&Scene, &Session) -> WdResult<()>,
{
    browser_test_with(name, &[], flow).await;
}

/// [`browser_test`] with extra Chromium arguments (e.g. [`crate::webdriver::BLOCK_AUTOPLAY`]).
pub async fn browser_test_with<F>(name: &str, chromium_args: &[&str], flow: F)
where
    F: AsyncFnOnce(&Scene, &Session) -> WdResult<()>,
{
    let scene = Scene::start().await;
    let driver = Driver::start().await;
    let session = driver.session_with(chromium_args).await;
    let outcome = AssertUnwindSafe(flow(&scene, &session))
        .catch_unwind()
        .await;
    let failure: Option<Box<dyn Any + Send>> = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(Box::new(format!("WebDriver: {e}"))),
        Err(panic) => Some(panic),
    };
    if failure.is_some() {
        let path = screenshot_dir().join(format!("{name}.png"));
        let url = session.current_url().await.unwrap_or_default();
        match session.save_screenshot(&path).await {
            Ok(()) => eprintln!("screenshot of {url} at failure: {}", path.display()),
            Err(e) => eprintln!("no screenshot of {url} at failure: {e}"),
        }
        let log = screenshot_dir().join(format!("{name}.chromedriver.log"));
        if driver.save_log(&log).is_ok() {
            eprintln!("chromedriver log: {}", log.display());
        }
    }
    let deleted = session.delete().await;
    drop(driver);
    scene.stop().await;
    if let Some(failure) = failure {
        std::panic::resume_unwind(failure);
    }
    deleted.expect("closing the browser session");
}

/// Run `flow` as a browser test at each of [`WIDTHS`] (`{name}_{width}`), each on its own
/// site and browser so a flow's data and counts are its own; the window is sized before the
/// flow starts, and the page the flow ends on must fit the width too ([`fits_width`]).
pub async fn browser_test_at_widths<F>(name: &str, flow: F)
where
    F: AsyncFn(&Scene, &Session, u32) -> WdResult<()>,
{
    for width in WIDTHS {
        browser_test(&format!("{name}_{width}"), async |scene, session| {
            session.set_window_size(width, HEIGHT).await?;
            flow(scene, session, width).await?;
            fits_width(session).await
        })
        .await;
    }
}

/// Assert that nothing on the current page is wider than the window (no sideways scrolling:
/// `document.documentElement.scrollWidth <= innerWidth`), waiting up to [`WAIT`] for a page
/// still laying out.
pub async fn fits_width(session: &Session) -> WdResult<()> {
    let script = "var d = document.documentElement; \
                  return d === null || document.readyState !== 'complete' ? null \
                  : [d.scrollWidth, window.innerWidth];";
    let deadline = Instant::now() + WAIT;
    loop {
        let sizes = session.execute(script, vec![]).await?;
        if let (Some(scroll), Some(inner)) = (sizes[0].as_u64(), sizes[1].as_u64()) {
            if scroll <= inner {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let url = session.current_url().await.unwrap_or_default();
                panic!("{url} is {scroll} px wide in a {inner} px window");
            }
        }
        if Instant::now() >= deadline {
            let url = session.current_url().await.unwrap_or_default();
            panic!("gave up after {WAIT:?} waiting for {url} to load");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Open `path` on the scene's site and check that the page fits the window ([`fits_width`]).
pub async fn visit(session: &Session, scene: &Scene, path: &str) -> WdResult<()> {
    session.goto(&scene.url(path)).await?;
    fits_width(session).await
}

/// With `CUSTOS_BROWSER_SCREENSHOTS` set, keep a screenshot of a moment of a passing run.
pub async fn moment(session: &Session, test: &str, what: &str) {
    if std::env::var_os("CUSTOS_BROWSER_SCREENSHOTS").is_some() {
        let path = screenshot_dir().join(format!("{test}-{what}.png"));
        session
            .save_screenshot(&path)
            .await
            .unwrap_or_else(|e| panic!("screenshot {}: {e}", path.display()));
        eprintln!("screenshot: {}", path.display());
    }
}

/// Poll `probe` until it gives a value, for at most [`WAIT`]; a lookup that finds nothing
/// (or an element replaced by a new page) counts as "not yet".
pub async fn wait_for<T>(
    session: &Session,
    what: &str,
    mut probe: impl AsyncFnMut() -> WdResult<Option<T>>,
) -> WdResult<T> {
    let deadline = Instant::now() + WAIT;
    loop {
        match probe().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) if e.is_stale_or_missing() => {}
            Err(e) => return Err(e),
        }
        if Instant::now() >= deadline {
            let url = session.current_url().await.unwrap_or_default();
            panic!("gave up after {WAIT:?} waiting for {what} (page {url})");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Wait until an element matching `css` is on the page.
pub async fn wait_css(session: &Session, css: &str) -> WdResult<Element> {
    wait_for(session, css, async || session.find(css).await.map(Some)).await
}

/// Wait until nothing on the page matches `css`.
pub async fn wait_gone(session: &Session, css: &str) -> WdResult<()> {
    let what = format!("no {css}");
    wait_for(session, &what, async || {
        Ok(session.find_all(css).await?.is_empty().then_some(()))
    })
    .await
}

/// Wait until the browser is on `path`.
pub async fn wait_path(session: &Session, scene: &Scene, path: &str) -> WdResult<()> {
    let wanted = scene.url(path);
    let what = format!("the page {wanted}");
    wait_for(session, &what, async || {
        Ok((session.current_url().await? == wanted).then_some(()))
    })
    .await?;
    fits_width(session).await
}

/// The text of the first element matching `css`.
pub async fn text_of(session: &Session, css: &str) -> WdResult<String> {
    let e = session.find(css).await?;
    session.text(&e).await
}

/// Sign in through the form, as a person would.
pub async fn sign_in(scene: &Scene, session: &Session, username: &str) -> WdResult<()> {
    session.goto(&scene.url("/login")).await?;
    let user = wait_css(session, "#login-username").await?;
    session.send_keys(&user, username).await?;
    let password = session.find("#login-password").await?;
    session.send_keys(&password, PASSWORD).await?;
    let submit = session.find("#login-submit").await?;
    session.click(&submit).await
}

/// Whether the page's visible text contains `needle`.
pub async fn page_shows(session: &Session, needle: &str) -> WdResult<bool> {
    let found = session
        .execute(
            "return document.body.innerText.includes(arguments[0]);",
            vec![needle.into()],
        )
        .await?;
    Ok(found == true)
}
