//! A minimal W3C WebDriver client over hyper, and a headless Chromium behind `chromedriver`.
//!
//! Only the commands the browser tests use: new session, navigate, current URL, find elements
//! by CSS selector, send keys, click, text, attribute, execute script, screenshot, delete
//! session (<https://www.w3.org/TR/webdriver2/>). One request per fresh HTTP/1.1 connection
//! to `chromedriver` on 127.0.0.1; errors are the driver's `error` and `message`.
//!
//! Why not fantoccini: with `default-features = false` it builds without TLS, but it adds 55
//! crate versions the workspace does not have (the `webdriver` crate with `http` 0.2 and
//! `thiserror` 1, `url` with ICU, `cookie`, `time`), while the commands above are a few JSON
//! requests over the hyper client the workspace already has.

use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

/// The key of an element reference in WebDriver JSON (W3C "web element identifier").
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The Enter key as WebDriver encodes it in `send_keys` text.
pub const ENTER: &str = "\u{E007}";

/// How long `chromedriver` may take to answer `/status` with `ready: true`.
const DRIVER_START: Duration = Duration::from_secs(15);
/// How long one WebDriver command may take (a navigation waits for the page load).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// Chromium's command line: headless, no sandbox (CI runs as root), and nothing that reaches
/// the network on its own (the machine has none; background requests would stall start-up).
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
];

/// Extra Chromium arguments for a browser that blocks autoplay until the page has had a user
/// gesture, as desktop Chromium does by default (headless Chromium allows autoplay).
pub const BLOCK_AUTOPLAY: &[&str] = &["--autoplay-policy=document-user-activation-required"];

/// A WebDriver failure: the driver's error code and message, or a transport failure.
#[derive(Debug)]
pub struct WebDriverError {
    /// The command, e.g. `POST /session/…/element`.
    pub command: String,
    /// The W3C error code (`no such element`, …) or `transport`.
    pub code: String,
    /// The driver's message.
    pub message: String,
}

impl WebDriverError {
    fn transport(command: &str, message: impl fmt::Display) -> Self {
        WebDriverError {
            command: command.to_owned(),
            code: "transport".into(),
            message: message.to_string(),
        }
    }

    /// Whether the element or the page it belonged to is gone (to retry a lookup).
    pub fn is_stale_or_missing(&self) -> bool {
        matches!(
            self.code.as_str(),
            "no such element" | "stale element reference"
        )
    }
}

impl fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.command, self.code, self.message)
    }
}

impl std::error::Error for WebDriverError {}

/// The result of a WebDriver command.
pub type WdResult<T> = Result<T, WebDriverError>;

/// Where the browser binaries are: `CUSTOS_CHROMEDRIVER` and `CUSTOS_CHROMIUM` if set, else
/// Debian's `chromium-driver` and `chromium` packages.
fn binaries() -> (PathBuf, PathBuf) {
    let driver = std::env::var_os("CUSTOS_CHROMEDRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromedriver"));
    let browser = std::env::var_os("CUSTOS_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    (driver, browser)
}

/// A running `chromedriver` on a free local port; killed on drop.
pub struct Driver {
    addr: SocketAddr,
    child: Child,
    log: PathBuf,
    browser: PathBuf,
    /// Holds the driver log and Chromium's profile; removed on drop.
    dir: tempfile::TempDir,
}

impl Driver {
    /// Start `chromedriver` and wait until its `/status` says it is ready. Panics with what to
    /// install when the binaries are missing or the driver does not come up: a browser test
    /// that cannot run must fail, not pass.
    pub async fn start() -> Driver {
        let (driver, browser) = binaries();
        for (path, package) in [(&driver, "chromium-driver"), (&browser, "chromium")] {
            assert!(
                path.exists(),
                "browser test cannot run: {} is missing (install the Debian package `{package}`; \
                 .ci/run does)",
                path.display()
            );
        }
        let dir = tempfile::tempdir().expect("temporary directory for the browser");
        let log = dir.path().join("chromedriver.log");
        // A free port: bind port 0, read it, release it for chromedriver.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free local port")
            .port();
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "browser test cannot run: starting {} failed: {e}",
                    driver.display()
                )
            });
        let mut d = Driver {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
            log,
            browser,
            dir,
        };
        d.wait_ready().await;
        d
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + DRIVER_START;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "browser test cannot run: chromedriver exited with {status} before it was \
                     ready; its log:\n{}",
                    self.log_tail()
                );
            }
            let last = match exchange(self.addr, Method::GET, "/status", None).await {
                Ok((_, body)) if body["value"]["ready"] == true => return,
                Ok((_, body)) => body.to_string(),
                Err(e) => e.to_string(),
            };
            assert!(
                Instant::now() < deadline,
                "browser test cannot run: chromedriver not ready after {DRIVER_START:?} \
                 (last answer: {last}); its log:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last lines of the driver's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Copy the driver's log to `path`.
    pub fn save_log(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::copy(&self.log, path).map(drop)
    }

    /// A new headless Chromium session with a fresh profile.
    pub async fn session(&self) -> Session {
        self.session_with(&[]).await
    }

    /// A new headless Chromium session with a fresh profile and `extra_args` after the usual
    /// ones (e.g. [`BLOCK_AUTOPLAY`]).
    pub async fn session_with(&self, extra_args: &[&str]) -> Session {
        let profile = self.dir.path().join("profile");
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| (*a).to_owned()).collect();
        args.extend(extra_args.iter().map(|a| (*a).to_owned()));
        args.push(format!("--user-data-dir={}", profile.display()));
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "goog:chromeOptions": {
                        "binary": self.browser,
                        "args": args,
                    },
                },
            },
        });
        let value = command(self.addr, Method::POST, "/session", Some(capabilities))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "browser test cannot run: Chromium did not start ({e}); chromedriver log:\n{}",
                    self.log_tail()
                )
            });
        let id = value["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("new session answer without sessionId: {value}"))
            .to_owned();
        Session {
            driver: self.addr,
            id,
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP exchange with the driver: status and JSON body.
async fn exchange(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> WdResult<(u16, Value)> {
    let what = format!("{method} {path}");
    let run = async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| WebDriverError::transport(&what, e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| WebDriverError::transport(&what, e))?;
        tokio::spawn(conn);
        let bytes = body
            .map(|b| serde_json::to_vec(&b).expect("JSON values serialise"))
            .unwrap_or_default();
        let request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header("host", addr.to_string())
            .header("content-type", "application/json; charset=utf-8")
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| WebDriverError::transport(&what, e))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| WebDriverError::transport(&what, e))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| WebDriverError::transport(&what, e))?
            .to_bytes();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| {
                WebDriverError::transport(
                    &what,
                    format!(
                        "non-JSON answer {status} ({e}): {}",
                        String::from_utf8_lossy(&bytes)
                    ),
                )
            })?
        };
        Ok((status, json))
    };
    tokio::time::timeout(COMMAND_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| {
            Err(WebDriverError::transport(
                &what,
                format!("no answer within {COMMAND_TIMEOUT:?}"),
            ))
        })
}

/// A WebDriver command: the answer's `value`, or its error.
async fn command(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> WdResult<Value> {
    let what = format!("{method} {path}");
    let (status, mut json) = exchange(addr, method, path, body).await?;
    let value = json["value"].take();
    if (200..300).contains(&status) {
        return Ok(value);
    }
    Err(WebDriverError {
        command: what,
        code: value["error"]
            .as_str()
            .unwrap_or("unknown error")
            .to_owned(),
        message: value["message"].as_str().unwrap_or_default().to_owned(),
    })
}

/// A browser session.
pub struct Session {
    driver: SocketAddr,
    id: String,
}

/// An element found on the current page.
#[derive(Debug, Clone)]
pub struct Element {
    id: String,
}

impl Session {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> WdResult<Value> {
        let path = format!("/session/{}{path}", self.id);
        command(self.driver, method, &path, body).await
    }

    /// Navigate to `url` and wait for the page to load.
    pub async fn goto(&self, url: &str) -> WdResult<()> {
        self.call(Method::POST, "/url", Some(json!({ "url": url })))
            .await
            .map(drop)
    }

    /// The current page's URL.
    pub async fn current_url(&self) -> WdResult<String> {
        let value = self.call(Method::GET, "/url", None).await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// The first element matching a CSS selector.
    pub async fn find(&self, css: &str) -> WdResult<Element> {
        let value = self
            .call(
                Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await?;
        element(&value)
    }

    /// Every element matching a CSS selector (possibly none).
    pub async fn find_all(&self, css: &str) -> WdResult<Vec<Element>> {
        let value = self
            .call(
                Method::POST,
                "/elements",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await?;
        value
            .as_array()
            .map(|items| items.iter().map(element).collect())
            .unwrap_or_else(|| Ok(Vec::new()))
    }

    /// Type `text` into an element (WebDriver key codes such as [`ENTER`] allowed).
    pub async fn send_keys(&self, e: &Element, text: &str) -> WdResult<()> {
        self.call(
            Method::POST,
            &format!("/element/{}/value", e.id),
            Some(json!({ "text": text })),
        )
        .await
        .map(drop)
    }

    /// Click an element (scrolled into view, as a user would).
    pub async fn click(&self, e: &Element) -> WdResult<()> {
        self.call(
            Method::POST,
            &format!("/element/{}/click", e.id),
            Some(json!({})),
        )
        .await
        .map(drop)
    }

    /// An element's rendered text.
    pub async fn text(&self, e: &Element) -> WdResult<String> {
        let value = self
            .call(Method::GET, &format!("/element/{}/text", e.id), None)
            .await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// An element's attribute, `None` when absent.
    pub async fn attr(&self, e: &Element, name: &str) -> WdResult<Option<String>> {
        let value = self
            .call(
                Method::GET,
                &format!("/element/{}/attribute/{name}", e.id),
                None,
            )
            .await?;
        Ok(value.as_str().map(str::to_owned))
    }

    /// Run a synchronous script in the page; its return value.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> WdResult<Value> {
        self.call(
            Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// A PNG screenshot of the viewport.
    pub async fn screenshot(&self) -> WdResult<Vec<u8>> {
        let value = self.call(Method::GET, "/screenshot", None).await?;
        let text = value.as_str().unwrap_or_default();
        STANDARD
            .decode(text)
            .map_err(|e| WebDriverError::transport("GET /screenshot", e))
    }

    /// Take a screenshot and write it to `path` (creating the directory).
    pub async fn save_screenshot(&self, path: &Path) -> Result<(), String> {
        let png = self.screenshot().await.map_err(|e| e.to_string())?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(path, png).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Print the current page to PDF (W3C `POST /session/{id}/print`, which chromedriver
    /// runs as Chromium's `Page.printToPDF`) on paper `width_cm` × `height_cm`, honouring the
    /// page's own CSS page size and margins; the PDF bytes.
    #[allow(dead_code)] // Only the report tests print.
    pub async fn print_pdf(&self, width_cm: f64, height_cm: f64) -> WdResult<Vec<u8>> {
        let body = json!({
            "page": { "width": width_cm, "height": height_cm },
            "margin": { "top": 0, "bottom": 0, "left": 0, "right": 0 },
            "background": true,
            "shrinkToFit": false,
        });
        let value = self.call(Method::POST, "/print", Some(body)).await?;
        let text = value.as_str().unwrap_or_default();
        STANDARD
            .decode(text)
            .map_err(|e| WebDriverError::transport("POST /print", e))
    }

    /// Resize the browser window (the tests run at 1400 px and at a tablet's 800 px).
    #[allow(dead_code)] // not every browser test binary resizes
    pub async fn set_window_size(&self, width: u32, height: u32) -> WdResult<()> {
        self.call(
            Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await
        .map(drop)
    }

    /// End the session (Chromium quits).
    pub async fn delete(self) -> WdResult<()> {
        self.call(Method::DELETE, "", None).await.map(drop)
    }
}

fn element(value: &Value) -> WdResult<Element> {
    value[ELEMENT_KEY]
        .as_str()
        .map(|id| Element { id: id.to_owned() })
        .ok_or_else(|| {
            WebDriverError::transport("element reference", format!("unexpected value {value}"))
        })
}
