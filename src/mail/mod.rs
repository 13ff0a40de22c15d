//! Outgoing mail: kept in the outbox and logged (with its link while no SMTP is set up,
//! since the log is then how mail reaches anyone).

use crate::account::model::Mail;
use crate::account::store;
use crate::config::Config;
use crate::core::time::now_micros;
use crate::core::ApiResult;
use crate::db::Db;

/// The link for a token: `links.verify` / `links.reset` is a path on `public_url` or an
/// absolute URL.
pub fn link(config: &Config, target: &str, token: &str) -> String {
    let base = if target.starts_with("http://") || target.starts_with("https://") {
        target.to_string()
    } else {
        format!("{}/{}", config.public_url(), target.trim_start_matches('/'))
    };
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}token={token}")
}

pub async fn send(
    db: &Db,
    config: &Config,
    to: &str,
    subject: &str,
    body: String,
    link: Option<String>,
) -> ApiResult<()> {
    let mail = store::record_mail(
        db,
        Mail {
            id: 0,
            to: to.to_string(),
            subject: subject.to_string(),
            body,
            link: link.clone(),
            created_at: now_micros(),
        },
    )
    .await?;
    log_sent(config, &mail);
    Ok(())
}

/// The log line of a mail that is in the outbox (with its link while there is no SMTP).
pub fn log_sent(config: &Config, mail: &Mail) {
    match (&config.smtp.host, &mail.link) {
        (None, Some(link)) => {
            tracing::info!(
                "mail to={} subject=\"{}\" link={link}",
                mail.to,
                mail.subject
            )
        }
        _ => tracing::info!("mail to={} subject=\"{}\"", mail.to, mail.subject),
    }
}
