//! Driver for 125 kHz EM4100 card modules (RDM6300 family), see
//! [`custos_protocol::em4100`].
//!
//! The module only sends: a frame now and then while a card is in its field. So there is
//! nothing to ask and no NoReply: an open port is a working reader, and only a lost port
//! ends a session. Each card becomes one [`ScannedCode::EmCard`] scan per presence: the
//! repeats are swallowed until the card has been absent for more than [`ABSENCE`]
//! ([`CardDebounce`]).

use std::convert::Infallible;
use std::time::Duration;

use custos_protocol::em4100::{self, Card, Em4100Error};
use custos_protocol::uplink::ScannedCode;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::health::Reporter;
use super::link::{Codec, Link};
use super::{ReaderError, ReaderSettings};
use crate::model::{ReaderOutput, now_ms};

/// How long a card must be out of the field before it counts as presented again.
pub(crate) const ABSENCE: Duration = Duration::from_secs(1);

/// Turns a module's repeated frames into one event per card presence.
///
/// A card counts as present while its frames keep coming less than `absence` apart; a
/// different card is a new presence at once.
#[derive(Debug, Clone)]
pub(crate) struct CardDebounce {
    absence: Duration,
    current: Option<(Card, Instant)>,
}

impl CardDebounce {
    pub(crate) fn new(absence: Duration) -> Self {
        Self {
            absence,
            current: None,
        }
    }

    /// Notes a frame of `card` at `now`; true if it starts a new presence (emit it).
    pub(crate) fn observe(&mut self, card: Card, now: Instant) -> bool {
        match &mut self.current {
            Some((seen, last)) if *seen == card && now.duration_since(*last) <= self.absence => {
                *last = now;
                false
            }
            _ => {
                self.current = Some((card, now));
                true
            }
        }
    }
}

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
            decode: em4100::decode,
            capacity: 4 * em4100::MAX_FRAME_LEN,
            is_checksum: |e| matches!(e, Em4100Error::BadChecksum { .. }),
            gap: None,
        },
        settings.reply_timeout,
    );
    reporter.answered().await?;
    let mut debounce = CardDebounce::new(ABSENCE);
    loop {
        let card = link.next_frame_until(reporter, None).await?;
        if !debounce.observe(card, Instant::now()) {
            continue;
        }
        tracing::debug!(%card, "card presented");
        reporter
            .emit(ReaderOutput::Scan {
                reader: reporter.name().clone(),
                at_ms: now_ms(),
                code: ScannedCode::EmCard {
                    id: card.id_hex().as_str().to_owned(),
                },
            })
            .await?;
    }
}

#[cfg(test)]
mod tests {
    use custos_protocol::uplink::{HealthState, ReaderFault};
    use tokio::io::{AsyncWriteExt, DuplexStream};
    use tokio::sync::mpsc;

    use super::super::testing::{hex, next_non_ok, wait_fault};
    use super::super::{Protocol, run_reader_on};
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_card_is_reported_once_per_presence() {
        let a: Card = "1A00B54E12".parse().unwrap();
        let b: Card = "67003B51C6".parse().unwrap();
        let t0 = Instant::now();
        let mut d = CardDebounce::new(ABSENCE);
        assert!(d.observe(a, t0));
        // Repeats while the card stays: nothing new, even long after the first frame.
        for i in 1..=30 {
            assert!(!d.observe(a, t0 + ms(100 * i)), "repeat {i}");
        }
        // Another card is new at once; then the first one again is new too.
        assert!(d.observe(b, t0 + ms(3100)));
        assert!(d.observe(a, t0 + ms(3200)));
        // A gap of exactly 1 s is still the same presence; longer is a new one.
        assert!(!d.observe(a, t0 + ms(4200)));
        assert!(d.observe(a, t0 + ms(5201)));
    }

    fn start() -> (
        mpsc::Receiver<ReaderOutput>,
        DuplexStream,
        tokio::task::JoinHandle<()>,
    ) {
        let (host, dev) = tokio::io::duplex(1024);
        let (out, rx) = mpsc::channel(64);
        let mut link = Some(host);
        let connect = move || {
            let next = link.take().ok_or(ReaderError::Closed);
            async move { next }
        };
        let settings = ReaderSettings::new("desk-card", Protocol::Em4100, "/dev/null");
        let task = tokio::spawn(run_reader_on(
            settings,
            out,
            std::future::pending(),
            connect,
        ));
        (rx, dev, task)
    }

    fn scan_of(o: ReaderOutput) -> ScannedCode {
        match o {
            ReaderOutput::Scan { code, .. } => code,
            other => panic!("expected a scan, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn frames_become_one_scan_per_card_and_garbage_is_counted() {
        let (mut rx, mut dev, _task) = start();
        // em4100.txt: card 1A00B54E12, checksum F3.
        let frame = hex("02 31 41 30 30 42 35 34 45 31 32 46 33 03");
        let mut bad = frame.clone();
        bad[11] = b'4'; // checksum digit F4: wrong
        dev.write_all(&hex("FF 00")).await.unwrap();
        dev.write_all(&bad).await.unwrap();
        for _ in 0..5 {
            dev.write_all(&frame).await.unwrap();
            tokio::time::sleep(ms(200)).await;
        }
        let code = scan_of(next_non_ok(&mut rx).await);
        assert_eq!(
            code,
            ScannedCode::EmCard {
                id: "1A00B54E12".into()
            }
        );
        // Absent for 2 s, then presented again: a second scan.
        tokio::time::sleep(ms(2000)).await;
        dev.write_all(&frame).await.unwrap();
        let again = loop {
            match rx.recv().await.unwrap() {
                ReaderOutput::Scan { code, .. } => break code,
                ReaderOutput::Health { health, .. } => {
                    assert_eq!(health.state, HealthState::Ok);
                    assert_eq!(health.checksum_errors, 1);
                    assert!(health.dropped_bytes >= 2 + 14, "{health:?}");
                }
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(again, code);
    }

    #[tokio::test(start_paused = true)]
    async fn a_vanished_module_is_serial_lost() {
        let (mut rx, dev, _task) = start();
        drop(dev);
        let h = wait_fault(&mut rx, &ReaderFault::SerialLost).await;
        assert_eq!(h.state, HealthState::Fault);
    }
}
