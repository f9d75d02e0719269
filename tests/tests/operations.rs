//! What an operator meets installing and running a gate (issue #14, "Operations"):
//! `custosd check` asks the real server whether it knows the device and whether its key is the
//! pinned one, in words; and a reader unplugged when the daemon starts is a reader fault on the
//! server, not a silent gate.

use std::path::Path;
use std::process::Output;

use custos_e2e::bins::binaries;
use custos_e2e::*;

/// Another Ed25519 public key than the server's (32 zero bytes).
const WRONG_PIN: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

async fn check(config: &Path) -> anyhow::Result<Output> {
    Ok(tokio::process::Command::new(&binaries().daemon)
        .args(["check", "--config"])
        .arg(config)
        .env_remove("RUST_LOG")
        .output()
        .await?)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The line of `check`'s output about `what` (`server`, `registration`, ...).
fn line<'a>(text: &'a str, what: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(&format!("{what}: ")))
        .unwrap_or_else(|| panic!("no {what} line in:\n{text}"))
}

/// Replaces the line starting with `key = ` in the configuration file.
fn set_key(config: &Path, key: &str, value: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(config)?;
    let edited: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with(&format!("{key} = ")) {
                format!("{key} = {value}")
            } else {
                l.to_owned()
            }
        })
        .collect();
    std::fs::write(config, edited.join("\n") + "\n")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_asks_the_server_about_the_device_and_its_pinned_key() -> anyhow::Result<()> {
    let mut site = Site::start(SiteOptions {
        gate: true,
        ..SiteOptions::default()
    })
    .await?;
    // The reader is the daemon's while it runs: stop it, as an installer would check first.
    site.gate_mut().stop_daemon().await?;
    let config = site.gate().config.clone();

    let out = check(&config).await?;
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        line(&text, "server").ends_with("answers; its key matches server_public_key"),
        "{text}"
    );
    assert_eq!(
        line(&text, "registration"),
        "registration: ok: device gate-1 is registered with this key"
    );
    assert!(
        text.contains("ok: device=gate-1 role=gate readers=1 public_key="),
        "{text}"
    );
    // Words, not Rust debug structures.
    for debug in ["Some(", "{", "GateInputs", "Gate {"] {
        assert!(!text.contains(debug), "{debug} in:\n{text}");
    }

    // A pin that is not the server's key.
    set_key(&config, "server_public_key", &format!("\"{WRONG_PIN}\""))?;
    let out = check(&config).await?;
    let text = stdout(&out);
    assert!(!out.status.success(), "{text}");
    let server = line(&text, "server");
    assert!(
        server.starts_with("server: FAILED: ") && server.contains(&format!("pins {WRONG_PIN}")),
        "{text}"
    );

    // A key the server does not know for gate-1.
    let other = config.with_file_name("other.key");
    keygen(&other).await?;
    set_key(
        &config,
        "key_file",
        &format!("{:?}", other.display().to_string()),
    )?;
    let out = check(&config).await?;
    let text = stdout(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        line(&text, "registration")
            .starts_with("registration: FAILED: the server does not accept device gate-1"),
        "{text}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_unplugged_at_start_is_a_fault_on_the_server_not_a_silent_gate()
-> anyhow::Result<()> {
    let mut site = Site::start(SiteOptions {
        gate: true,
        ..SiteOptions::default()
    })
    .await?;
    let stream = site.alert_stream().await?;
    site.gate_mut().stop_daemon().await?;
    let config = site.gate().config.clone();
    set_key(&config, "port", "\"/nonexistent/ttyUSB9\"")?;
    let mark = stream.mark();
    // It starts (start_daemon waits for "custosd running")...
    site.gate_mut().start_daemon().await?;
    // ...and the server shows the reader's fault, the device still heard from.
    let fault = stream
        .wait_alert_after(mark, "reader_fault", STEP, |a| {
            a["device_id"] == GATE && a["detail"]["state"] == "fault"
        })
        .await?;
    assert_eq!(fault["detail"]["reader"], "uhf-main", "{fault}");
    assert_eq!(fault["detail"]["fault"]["type"], "serial_lost", "{fault}");
    let status = site.wait_device_state(GATE, "fault", STEP).await?;
    assert_eq!(status["reader"], "uhf-main", "{status}");
    let silent = site.alerts(None, Some("reader_silent")).await?;
    assert!(
        !silent.iter().any(|a| a["device_id"] == GATE),
        "a silent gate instead of a fault: {silent:?}"
    );
    Ok(())
}
