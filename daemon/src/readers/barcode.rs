//! Driver for serial barcode scanners, see [`custos_protocol::barcode`].
//!
//! One line is one scan: [`ScannedCode::Barcode`] with the line's data, the AIM symbology
//! prefix (`]C1`, `]d2`, …) removed, as the uplink defines it. A line that is only an AIM
//! prefix carries nothing and is skipped. Scanning the same label twice is two scans (unlike
//! card modules, a scanner does not repeat on its own). Lines with bytes outside printable
//! ASCII are dropped and counted; the scanner must be set to ASCII output.
//!
//! Like the EM4100 modules, scanners only send, so an open port is a working reader.

use std::convert::Infallible;

use custos_protocol::barcode::{self, MAX_LINE};
use custos_protocol::uplink::ScannedCode;
use tokio::io::{AsyncRead, AsyncWrite};

use super::health::Reporter;
use super::link::{Codec, Link};
use super::{ReaderError, ReaderSettings};
use crate::model::{ReaderOutput, now_ms};

/// Runs a session until the port fails.
pub(crate) async fn session<S>(io: S, settings: &ReaderSettings, reporter: &Reporter) -> ReaderError
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Err(e) = run(io, settings, reporter).await;
    e
}

async fn run<S>(
    io: S,
    settings: &ReaderSettings,
    reporter: &Reporter,
) -> Result<Infallible, ReaderError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut link = Link::new(
        io,
        Codec {
            decode: barcode::decode_line,
            capacity: 2 * (MAX_LINE + 2),
            // Scanner lines carry no checksum.
            is_checksum: |_| false,
            gap: None,
        },
        settings.reply_timeout,
    );
    reporter.answered().await?;
    loop {
        let line = link.next_frame_until(reporter, None).await?;
        let Some(text) = scan_text(&line) else {
            tracing::debug!(?line, "line without data after its aim prefix");
            continue;
        };
        reporter
            .emit(ReaderOutput::Scan {
                reader: reporter.name().clone(),
                at_ms: now_ms(),
                code: ScannedCode::Barcode { text },
            })
            .await?;
    }
}

/// The text of a scan: the line's data without the AIM prefix; `None` if nothing is left.
fn scan_text(line: &barcode::ScanLine) -> Option<String> {
    let data = line.data();
    // A ScanLine holds printable ASCII and GS only, so its data is UTF-8.
    let text = std::str::from_utf8(data).ok()?;
    (!text.is_empty()).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use custos_protocol::barcode::ScanLine;
    use tokio::io::AsyncWriteExt;
    use tokio::sync::mpsc;

    use super::super::testing::next_non_ok;
    use super::super::{Protocol, run_reader_on};
    use super::*;

    #[test]
    fn aim_prefix_is_removed() {
        let line: ScanLine = "]C1CU2024-0017X".parse().unwrap();
        assert_eq!(scan_text(&line).as_deref(), Some("CU2024-0017X"));
        let plain: ScanLine = "CU2024-0017X".parse().unwrap();
        assert_eq!(scan_text(&plain).as_deref(), Some("CU2024-0017X"));
        let bare: ScanLine = "]E0".parse().unwrap();
        assert_eq!(scan_text(&bare), None);
    }

    #[tokio::test(start_paused = true)]
    async fn lines_become_scans_and_bad_lines_are_dropped() {
        let (host, mut dev) = tokio::io::duplex(1024);
        let (out, mut rx) = mpsc::channel(64);
        let mut link = Some(host);
        let connect = move || {
            let next = link.take().ok_or(ReaderError::Closed);
            async move { next }
        };
        let settings = ReaderSettings::new("desk-scanner", Protocol::Barcode, "/dev/null");
        let _task = tokio::spawn(run_reader_on(
            settings,
            out,
            std::future::pending(),
            connect,
        ));
        // A line with a control byte is dropped whole; CR, LF and CR LF all end lines; the
        // same label twice is two scans.
        dev.write_all(b"bad\x07line\r\n]C1CU2024-0017X\r\nCU2024-0017X\r")
            .await
            .unwrap();
        dev.write_all(b"\nplain text\n").await.unwrap();
        let mut texts = Vec::new();
        while texts.len() < 3 {
            match next_non_ok(&mut rx).await {
                ReaderOutput::Scan {
                    code: ScannedCode::Barcode { text },
                    ..
                } => texts.push(text),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(texts, ["CU2024-0017X", "CU2024-0017X", "plain text"]);
        // The periodic report counts the dropped line (8 bytes and CR LF).
        let h = loop {
            if let ReaderOutput::Health { health, .. } = rx.recv().await.unwrap() {
                break health;
            }
        };
        assert_eq!(h.dropped_bytes, 10);
        assert_eq!(h.frames_ok, 3);
        assert_eq!(h.checksum_errors, 0);
    }
}
