//! E-mail over SMTP with `lettre` (rustls; STARTTLS, implicit TLS or plain for a local relay;
//! optional authentication). One connection per message: alarms are rare, and a connection
//! that a relay dropped overnight would otherwise fail the first alarm of the morning.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{Smtp, SmtpTls};
use crate::domain::notify::Email;

/// Why the mailer could not be built (bad TLS settings, an unreadable CA file).
#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    /// The CA file could not be read.
    #[error("cannot read smtp.ca_file {path}: {source}")]
    CaFile {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// `smtp.from` is not an address.
    #[error("smtp.from is not an e-mail address")]
    From,
    /// lettre refused the TLS settings or the certificate.
    #[error("smtp settings: {0}")]
    Settings(#[from] lettre::transport::smtp::Error),
}

/// The configured SMTP relay.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from).finish()
    }
}

impl Mailer {
    /// A mailer for `smtp`; `None` when no host is configured.
    pub fn new(smtp: &Smtp) -> Result<Option<Mailer>, MailerError> {
        if smtp.host.is_empty() {
            return Ok(None);
        }
        let tls_parameters = || -> Result<TlsParameters, MailerError> {
            let mut builder = TlsParameters::builder(smtp.host.clone());
            if !smtp.ca_file.as_os_str().is_empty() {
                let pem = std::fs::read(&smtp.ca_file).map_err(|source| MailerError::CaFile {
                    path: smtp.ca_file.display().to_string(),
                    source,
                })?;
                builder = builder.add_root_certificate(Certificate::from_pem(&pem)?);
            }
            Ok(builder.build_rustls()?)
        };
        let tls = match smtp.tls {
            SmtpTls::Starttls => Tls::Required(tls_parameters()?),
            SmtpTls::Implicit => Tls::Wrapper(tls_parameters()?),
            SmtpTls::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
            .port(smtp.port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(smtp.timeout_secs)))
            .hello_name(ClientId::Domain(smtp.hello_name.clone()));
        if !smtp.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                smtp.username.clone(),
                smtp.password.clone(),
            ));
        }
        let from = smtp
            .from
            .parse::<Mailbox>()
            .map_err(|_| MailerError::From)?;
        Ok(Some(Mailer {
            transport: builder.build(),
            from,
        }))
    }

    /// Send `email` to `to` with `message_id` (stable per delivery: a resent message keeps
    /// it, so a mail system can drop duplicates); `Err` carries the reason as text.
    pub async fn send(&self, to: &str, message_id: &str, email: &Email) -> Result<(), String> {
        let to: Mailbox = to.parse().map_err(|e| format!("bad address: {e}"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .message_id(Some(format!("<{message_id}@custos>")))
            .header(ContentType::TEXT_PLAIN)
            .body(email.body.clone())
            .map_err(|e| format!("building the message: {e}"))?;
        self.transport
            .send(message)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}
