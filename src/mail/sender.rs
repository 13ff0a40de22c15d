//! Delivery through SMTP: the transport that `smtp.*` describes, and the task that sends
//! queued mail with retries, recording each outcome in the outbox.
//!
//! A mail is recorded as sent only after the server accepted it. If the shop stops
//! between the server's acceptance and that record (a window of one disk write), the
//! mail is still queued at the next start and goes out again, with the same Message-ID.

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::response::Response;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

use crate::config::{Smtp, SmtpTls};
use crate::core::time::{now_micros, rfc3339};
use crate::db::Backend;
use crate::mail::model::{Delivery, Mail};
use crate::mail::store;

/// How often the sender looks for due mail.
const POLL: Duration = Duration::from_secs(1);
/// How many due mails the sender takes at a time.
const BATCH: usize = 50;
const MICROS_PER_SEC: i64 = 1_000_000;

/// The configured SMTP server.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// `host:port (tls mode)`, for messages to the operator.
    pub server: String,
}

/// Why a message was not delivered.
#[derive(Debug)]
pub struct SendError {
    /// The server refused it for good (a 5xx answer): retrying would not help.
    pub permanent: bool,
    pub text: String,
}

impl Mailer {
    /// The transport of `smtp.*`; fails on settings that can never work (no host, an
    /// unreadable CA file), not on a server that is down.
    pub fn new(smtp: &Smtp) -> Result<Mailer, String> {
        let host = smtp
            .host
            .as_deref()
            .ok_or("no SMTP server is configured: set smtp.host")?;
        let port = smtp.port();
        let mut params = TlsParameters::builder(host.to_string());
        if let Some(path) = &smtp.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read smtp.ca_file {}: {e}", path.display()))?;
            let cert = Certificate::from_pem(&pem).map_err(|e| {
                format!(
                    "smtp.ca_file {} is not a PEM certificate: {e}",
                    path.display()
                )
            })?;
            params = params.add_root_certificate(cert);
        }
        let params = || {
            params
                .clone()
                .build_rustls()
                .map_err(|e| format!("cannot set up TLS for {host}: {e}"))
        };
        let (tls, mode) = match smtp.tls {
            SmtpTls::Starttls => (Tls::Required(params()?), "STARTTLS"),
            SmtpTls::Tls => (Tls::Wrapper(params()?), "TLS"),
            SmtpTls::None => (Tls::None, "no TLS"),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(30)));
        if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        let from = smtp
            .from
            .parse()
            .map_err(|e| format!("smtp.from `{}`: {e}", smtp.from))?;
        Ok(Mailer {
            transport: builder.build(),
            from,
            server: format!("{host}:{port} ({mode})"),
        })
    }

    /// Connects, greets (EHLO, STARTTLS and login as configured) and sends NOOP.
    pub async fn check(&self) -> Result<(), String> {
        match self.transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err("the server did not answer NOOP".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Sends one mail; answers the server's reply to it.
    pub async fn send(&self, mail: &Mail) -> Result<String, SendError> {
        let to: Mailbox = mail.to.parse().map_err(|e| SendError {
            permanent: true,
            text: format!("`{}` is not an address: {e}", mail.to),
        })?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .message_id(Some(format!(
                "<shopbox.{}.{}@{}>",
                mail.id,
                mail.created_at,
                self.from.email.domain()
            )))
            .date(SystemTime::UNIX_EPOCH + Duration::from_micros(mail.created_at.max(0) as u64))
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.clone())
            .map_err(|e| SendError {
                permanent: true,
                text: format!("cannot build the message: {e}"),
            })?;
        self.send_message(message).await
    }

    /// Sends the message of `shopbox mail test`.
    pub async fn send_test(&self, to: &str, shop: &str) -> Result<String, SendError> {
        let mail = Mail {
            id: 0,
            to: to.to_string(),
            subject: format!("{shop}: test message"),
            body:
                "This message was sent by `shopbox mail test` to check the shop's SMTP settings.\n"
                    .to_string(),
            link: None,
            created_at: now_micros(),
            delivery: Delivery::queued(0),
        };
        self.send(&mail).await
    }

    async fn send_message(&self, message: Message) -> Result<String, SendError> {
        self.transport
            .send(message)
            .await
            .map(|r| answer(&r))
            .map_err(|e| SendError {
                permanent: e.is_permanent(),
                text: e.to_string(),
            })
    }
}

fn answer(response: &Response) -> String {
    let lines: Vec<&str> = response.message().collect();
    format!("{} {}", response.code(), lines.join(" "))
}

/// How long to wait after the `attempts`-th failed attempt.
fn backoff_micros(smtp: &Smtp, attempts: u32) -> i64 {
    let doubled = 1u64 << attempts.saturating_sub(1).min(32);
    let secs = smtp
        .retry_min_secs
        .saturating_mul(doubled)
        .min(smtp.retry_max_secs);
    secs as i64 * MICROS_PER_SEC
}

/// Delivers queued mail until `stop` turns true; a send under way is finished and
/// recorded first.
pub async fn run(
    db: Backend,
    mailer: std::sync::Arc<Mailer>,
    smtp: Smtp,
    metrics: std::sync::Arc<crate::http::metrics::Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        match store::due(&db, now_micros(), BATCH).await {
            Ok(mails) => {
                for mail in mails {
                    if *stop.borrow() {
                        return;
                    }
                    match deliver(&db, &mailer, &smtp, mail).await {
                        Some(Delivery::Sent { .. }) => metrics.count("mails_sent", 1),
                        Some(Delivery::Failed { .. }) => metrics.count("mails_failed", 1),
                        _ => {}
                    }
                }
            }
            Err(e) => tracing::error!("cannot read the mail queue: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// One attempt at one mail, and its outcome recorded (and answered).
async fn deliver(db: &Backend, mailer: &Mailer, smtp: &Smtp, mail: Mail) -> Option<Delivery> {
    let Delivery::Queued { attempts, .. } = mail.delivery else {
        return None;
    };
    let give_up_at = mail.created_at + smtp.give_up_hours as i64 * 3600 * MICROS_PER_SEC;
    let now = now_micros();
    let outcome = if attempts == 0 && now >= give_up_at {
        tracing::warn!(
            "mail {} to {} not sent: written {} (more than {} hours ago) while no SMTP server was reachable or configured",
            mail.id, mail.to, rfc3339(mail.created_at), smtp.give_up_hours
        );
        Delivery::Failed {
            attempts,
            at: now,
            error: format!(
                "not sent: more than {} hours old when delivery began",
                smtp.give_up_hours
            ),
        }
    } else {
        let result = mailer.send(&mail).await;
        let now = now_micros();
        let attempts = attempts + 1;
        match result {
            Ok(answer) => {
                tracing::info!("mail {} to {} sent: {answer}", mail.id, mail.to);
                Delivery::Sent { at: now, answer }
            }
            Err(e) if e.permanent => {
                tracing::warn!(
                    "mail {} to {} refused, not retried: {}",
                    mail.id,
                    mail.to,
                    e.text
                );
                Delivery::Failed {
                    attempts,
                    at: now,
                    error: e.text,
                }
            }
            Err(e) => {
                let next = now + backoff_micros(smtp, attempts);
                if next >= give_up_at {
                    tracing::warn!(
                        "mail {} to {} given up after {attempts} attempts over {} hours: {}",
                        mail.id,
                        mail.to,
                        smtp.give_up_hours,
                        e.text
                    );
                    Delivery::Failed {
                        attempts,
                        at: now,
                        error: e.text,
                    }
                } else {
                    tracing::warn!(
                        "mail {} to {}: attempt {attempts} failed ({}); next at {}",
                        mail.id,
                        mail.to,
                        e.text,
                        rfc3339(next)
                    );
                    Delivery::Queued {
                        attempts,
                        next_attempt: next,
                        last_error: Some(e.text),
                    }
                }
            }
        }
    };
    if let Err(e) = store::set_delivery(db, mail.id, outcome.clone()).await {
        tracing::error!("cannot record the delivery of mail {}: {e}", mail.id);
        return None;
    }
    Some(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_its_bounds() {
        let smtp = Smtp::default();
        let secs = |n| backoff_micros(&smtp, n) / MICROS_PER_SEC;
        assert_eq!(secs(1), 30);
        assert_eq!(secs(2), 60);
        assert_eq!(secs(7), 1920);
        assert_eq!(secs(8), 3600);
        assert_eq!(secs(200), 3600);
    }
}
