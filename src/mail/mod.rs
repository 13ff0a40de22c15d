//! The shop's emails, in one place: what each says, the links they carry, and sending
//! (kept in the outbox, queued for SMTP delivery, and logged; with its link while no SMTP
//! is set up, since the log is then how mail reaches anyone).

pub mod model;
pub mod sender;
pub mod store;

use crate::config::Config;
use crate::db::migrate::Migration;
use crate::db::StoreResult;
use crate::http::AppState;
use model::{Delivery, Letter, Mail};

/// The outbox's schema upgrades.
pub const MIGRATIONS: &[Migration] = &[Migration {
    from: 3,
    run: store::sled::add_delivery_states,
}];

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

pub fn verification(shop: &str, name: &str, link: &str) -> Letter {
    Letter {
        subject: format!("Confirm your email for {shop}"),
        body: format!(
            "Hello {name},\n\nconfirm your email address for {shop} by opening this link (valid for 24 hours):\n{link}\n"
        ),
    }
}

pub fn password_reset(shop: &str, name: &str, link: &str) -> Letter {
    Letter {
        subject: format!("Reset your {shop} password"),
        body: format!(
            "Hello {name},\n\nsomeone asked to reset the password of your {shop} account. If it was you, open this link within 30 minutes:\n{link}\n\nIf not, ignore this email.\n"
        ),
    }
}

/// One line of an order as its confirmation lists it.
pub struct OrderLine<'a> {
    pub quantity: i64,
    pub title: &'a str,
    /// Unit price in cents.
    pub price: i64,
}

pub struct OrderSummary<'a> {
    pub shop: &'a str,
    pub currency: &'a str,
    pub name: &'a str,
    pub order_id: u64,
    pub lines: Vec<OrderLine<'a>>,
    /// In cents.
    pub total: i64,
}

pub fn order_confirmation(order: &OrderSummary<'_>) -> Letter {
    let (shop, id) = (order.shop, order.order_id);
    let lines: Vec<String> = order
        .lines
        .iter()
        .map(|l| {
            format!(
                "  {} x {} at {:.2}",
                l.quantity,
                l.title,
                l.price as f64 / 100.0
            )
        })
        .collect();
    Letter {
        subject: format!("Your order #{id} at {shop}"),
        body: format!(
            "Hello {},\n\nthank you for your order #{id} at {shop}:\n{}\nTotal: {:.2} {}\n",
            order.name,
            lines.join("\n"),
            order.total as f64 / 100.0,
            order.currency
        ),
    }
}

pub fn shipping_change(shop: &str, name: &str, order_id: u64, status: &str) -> Letter {
    Letter {
        subject: format!("Order #{order_id} is {status}"),
        body: format!("Hello {name},\n\nyour order #{order_id} at {shop} is now {status}.\n"),
    }
}

/// The mail of `letter` to `to`, queued for delivery, ready for the outbox (its id still
/// to be given).
pub fn addressed(to: &str, letter: Letter, link: Option<String>, now: i64) -> Mail {
    Mail {
        id: 0,
        to: to.to_string(),
        subject: letter.subject,
        body: letter.body,
        link,
        created_at: now,
        delivery: Delivery::queued(now),
    }
}

/// Keeps a letter in the outbox, queued for delivery, and logs it.
pub async fn send(
    state: &AppState,
    to: &str,
    letter: Letter,
    link: Option<String>,
    now: i64,
) -> StoreResult<()> {
    let mail = store::record(&state.db, addressed(to, letter, link, now)).await?;
    queued(state, &mail);
    Ok(())
}

/// The log target of the one line that may carry a link's token: the mail line while no
/// SMTP server is configured. Every other log line has tokens and passwords redacted.
pub const LINK_LOG_TARGET: &str = "shopbox::mail::link";

/// A mail is in the outbox: counted, and logged (with its link while there is no SMTP).
pub fn queued(state: &AppState, mail: &Mail) {
    state.metrics.count("mails_queued", 1);
    match (&state.config.smtp.host, &mail.link) {
        (None, Some(link)) => {
            tracing::info!(
                target: LINK_LOG_TARGET,
                "mail to={} subject=\"{}\" link={link}",
                mail.to,
                mail.subject
            )
        }
        _ => tracing::info!("mail to={} subject=\"{}\"", mail.to, mail.subject),
    }
}
