//! A local SMTP sink for the demo and the benchmark: Debian's `python3-aiosmtpd` (a real SMTP
//! server) on 127.0.0.1, port 0, printing one JSON line per message it accepts. It is a child
//! process, killed when the [`SmtpSink`] is dropped.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

/// The sink: prints `ready PORT`, then per message `{"to":[..],"subject":..,"alert":N|null}`
/// (the subject decoded; `alert` the first `#N` of the decoded body).
const SCRIPT: &str = r##"
import asyncio, email, email.header, json, re
from aiosmtpd.smtp import SMTP

class Handler:
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content)
        subject = str(email.header.make_header(email.header.decode_header(msg["Subject"] or "")))
        body = msg.get_payload(decode=True).decode("utf-8", "replace")
        m = re.search(r"#(\d+) ", body)
        print(json.dumps({"to": envelope.rcpt_tos, "subject": subject,
                          "alert": int(m.group(1)) if m else None}), flush=True)
        return "250 OK"

async def main():
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(lambda: SMTP(Handler()), "127.0.0.1", 0)
    print("ready", srv.sockets[0].getsockname()[1], flush=True)
    await srv.serve_forever()

asyncio.run(main())
"##;

/// One message the sink accepted.
#[derive(Debug, Clone, Deserialize)]
pub struct Accepted {
    /// The envelope recipients.
    pub to: Vec<String>,
    /// The decoded subject.
    pub subject: String,
    /// The alert id the message is about (the first `#N` of its body).
    pub alert: Option<i64>,
}

/// A running sink.
#[derive(Debug)]
pub struct SmtpSink {
    _child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl SmtpSink {
    /// Start the sink and wait (up to 30 s) until it listens.
    ///
    /// # Errors
    /// No python3 with aiosmtpd, or it did not come up.
    pub async fn start() -> anyhow::Result<SmtpSink> {
        let python = if std::path::Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        let mut child = tokio::process::Command::new(python)
            .arg("-c")
            .arg(SCRIPT)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting python3 (the SMTP sink needs python3-aiosmtpd)")?;
        let stdout = child.stdout.take().context("sink stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .context("the SMTP sink did not start within 30 s")??
            .context("the SMTP sink exited (is python3-aiosmtpd installed?)")?;
        let port = ready
            .strip_prefix("ready ")
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("unexpected first line from the SMTP sink: {ready}"))?;
        Ok(SmtpSink {
            _child: child,
            lines,
            port,
        })
    }

    /// The next accepted message; `None` once the sink has exited.
    ///
    /// # Errors
    /// A line that is not the sink's JSON.
    pub async fn next(&mut self) -> anyhow::Result<Option<Accepted>> {
        match self.lines.next_line().await? {
            None => Ok(None),
            Some(line) => Ok(Some(serde_json::from_str(&line)?)),
        }
    }
}
