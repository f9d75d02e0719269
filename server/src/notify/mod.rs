//! The notifier: a background task that routes alert changes into deliveries and sends them
//! (e-mail over SMTP, webhooks over HTTP), retrying with backoff.
//!
//! # Durability
//! An alert change is stored in the transaction that made it (`store::notify`); routing turns
//! it into deliveries in one transaction; a delivery becomes `sent` only after the SMTP server
//! or the webhook receiver accepted it. Everything the task knows is in the database, so a
//! restart picks up where it stopped: pending deliveries are sent, failed tries are retried
//! when their backoff ends. A crash after a send and before its record means one more send
//! with the same delivery id (at least once).
//!
//! # Timing
//! The task wakes when the alert hub announces a change (so an alarm leaves at once), when the
//! next retry is due, and at least every `poll_interval_ms`. The sends of one round run
//! concurrently; a round records all its tries in one transaction.

pub mod smtp;
pub mod webhook;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures_util::future::join_all;

use crate::AppState;
use crate::config::Webhook;
use crate::domain::notify::{self, Notice};
use crate::service::ServiceError;
use crate::service::notify::{self as use_case, Routing};
use crate::store::notify::{Channel, DueDelivery};
pub use smtp::{Mailer, MailerError};

/// The most deliveries one round sends.
const ROUND_MAX: usize = 200;

/// Timeout of one webhook POST.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// The configured counterparts.
#[derive(Debug, Clone)]
pub struct Notifier {
    mailer: Option<Mailer>,
    hooks: HashMap<String, Webhook>,
    routing: Routing,
}

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Round {
    /// Alert changes routed.
    pub routed: usize,
    /// Deliveries accepted by their counterpart.
    pub sent: usize,
    /// Deliveries whose try failed.
    pub failed: usize,
    /// `notification_failed` alerts raised or repeated.
    pub reported: usize,
}

impl Notifier {
    /// The notifier of the application's settings.
    pub fn new(app: &AppState) -> Result<Notifier, MailerError> {
        let settings = app.settings();
        Ok(Notifier {
            mailer: Mailer::new(&settings.smtp)?,
            hooks: settings
                .webhooks
                .iter()
                .map(|h| (h.name.clone(), h.clone()))
                .collect(),
            routing: Routing::of(app),
        })
    }

    /// One round: route, send what is due, report what is stuck.
    pub async fn round(&self, app: &AppState) -> Result<Round, ServiceError> {
        let mut round = Round::default();
        loop {
            let n = use_case::route(app, &self.routing).await?;
            round.routed += n;
            if n == 0 {
                break;
            }
        }
        let due = use_case::due(app, ROUND_MAX).await?;
        if !due.is_empty() {
            let tries = join_all(self.batches(due).into_iter().map(|b| self.send(b))).await;
            let at_ms = app.now().unix_ms();
            let mut outcomes = Vec::new();
            for (deliveries, error) in tries {
                for d in deliveries {
                    if error.is_some() {
                        round.failed += 1;
                    } else {
                        round.sent += 1;
                    }
                    outcomes.push((d.id, use_case::outcome(app, &d, at_ms, error.clone())));
                }
            }
            use_case::record(app, at_ms, outcomes).await?;
        }
        round.reported = use_case::report_stuck(app).await?.len();
        Ok(round)
    }

    /// One batch per e-mail or POST: digest lines of one recipient share one message.
    fn batches(&self, due: Vec<DueDelivery>) -> Vec<Vec<DueDelivery>> {
        let mut out = Vec::new();
        let mut digests: BTreeMap<String, Vec<DueDelivery>> = BTreeMap::new();
        for d in due {
            if d.channel == Channel::Digest {
                digests.entry(d.target.clone()).or_default().push(d);
            } else {
                out.push(vec![d]);
            }
        }
        out.extend(digests.into_values());
        out
    }

    /// Send one batch; `Some(reason)` if it failed.
    async fn send(&self, batch: Vec<DueDelivery>) -> (Vec<DueDelivery>, Option<String>) {
        let error = self.try_send(&batch).await.err();
        if let Some(e) = &error {
            tracing::warn!(
                channel = batch[0].channel.as_str(),
                target = %batch[0].target,
                error = %e,
                "notification not delivered"
            );
        }
        (batch, error)
    }

    async fn try_send(&self, batch: &[DueDelivery]) -> Result<(), String> {
        let first = &batch[0];
        match first.channel {
            Channel::Webhook => {
                let hook = self
                    .hooks
                    .get(&first.target)
                    .ok_or("webhook no longer configured")?;
                let body = notify::webhook_body(&first.delivery_id, &first.notice);
                let event = format!("alert.{}", first.notice.change.as_str());
                let bytes = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
                webhook::post(
                    &hook.url,
                    &hook.secret,
                    &first.delivery_id,
                    &event,
                    bytes,
                    WEBHOOK_TIMEOUT,
                )
                .await
            }
            Channel::Email => {
                let mailer = self.mailer.as_ref().ok_or("e-mail no longer configured")?;
                let email = notify::render_alarm(&first.notice);
                mailer.send(&first.target, &first.delivery_id, &email).await
            }
            Channel::Digest => {
                let mailer = self.mailer.as_ref().ok_or("e-mail no longer configured")?;
                let notices: Vec<Notice> = batch.iter().map(|d| d.notice.clone()).collect();
                let day = first.notice.at.to_string();
                let email = notify::render_digest(&day[..10.min(day.len())], &notices);
                let id = format!("digest-{}", first.delivery_id);
                mailer.send(&first.target, &id, &email).await
            }
        }
    }
}

/// Run rounds until the task is aborted (see the module docs for when).
pub(crate) async fn run(app: AppState, notifier: Notifier) {
    let poll = Duration::from_millis(app.settings().notifications.poll_interval_ms);
    let mut wake = app.alerts().subscribe();
    loop {
        let mut wait = poll;
        match notifier.round(&app).await {
            Ok(round) if round.failed > 0 || round.reported > 0 => {
                tracing::info!(?round, "notifications");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "notification round failed"),
        }
        if let Ok(Some(next)) = use_case::next_due(&app).await {
            let until = next.saturating_sub(app.now().unix_ms()).max(0);
            wait = wait.min(Duration::from_millis(u64::try_from(until).unwrap_or(0)));
        }
        tokio::select! {
            _ = wake.recv() => {
                // Whatever else is queued is covered by the next round.
                while wake.try_recv().is_ok() {}
            }
            () = tokio::time::sleep(wait) => {}
        }
    }
}
