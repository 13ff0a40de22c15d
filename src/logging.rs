//! The log: text (or JSON) lines on stderr, filtered by `RUST_LOG` (default `info`).
//!
//! Rocket's own lines are left out unless `RUST_LOG` names `rocket`: the request line
//! (`http::request_id`) says what they would (at debug for 4xx, so a 404 or a failed data
//! guard is not an error of the shop), and start-up failures come back as one line from
//! `serve`.
//!
//! No line carries a secret: the value of any key ending in `token` or `password` (a
//! verification or reset link's `?token=`, a `refresh_token`, a `new_password`) is
//! `[redacted]` in every line, the request lines, Rocket's own and error lines alike. The
//! one exception is the mail line while no SMTP server is configured
//! (`mail::LINK_LOG_TARGET`): the log is then how a verification or reset link reaches
//! anyone.

use std::fmt;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;
use crate::core::redact;
use crate::mail::LINK_LOG_TARGET;

/// What the log shows when `RUST_LOG` is unset.
const DEFAULT_FILTER: &str = "info,sled=warn";

/// Sets up logging: text by default, JSON by configuration; `RUST_LOG` filters.
pub fn init(format: LogFormat) {
    let asked = std::env::var("RUST_LOG")
        .ok()
        .filter(|d| !d.trim().is_empty());
    let filter = asked
        .as_deref()
        .and_then(|d| EnvFilter::try_new(d).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));
    let rocket_asked = asked.as_deref().is_some_and(|d| d.contains("rocket"));
    let quiet_rocket = filter_fn(move |meta| rocket_asked || !from_rocket(meta));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let text = tracing_subscriber::fmt::format().with_ansi(false);
    let _ = match format {
        LogFormat::Text => builder
            .event_format(Redacting(text))
            .finish()
            .with(quiet_rocket)
            .try_init(),
        LogFormat::Json => builder
            .json()
            .event_format(Redacting(text.json()))
            .finish()
            .with(quiet_rocket)
            .try_init(),
    };
}

/// Formats a line with `F`, then takes the secrets out of it.
struct Redacting<F>(F);

impl<S, N, F> FormatEvent<S, N> for Redacting<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if event.metadata().target() == LINK_LOG_TARGET {
            return self.0.format_event(ctx, writer, event);
        }
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        writer.write_str(&redact::secrets(&line))
    }
}

/// Rocket's own lines, and those its code generation puts into route handlers (a failed
/// data or request guard): their targets are Rocket's modules, or end in `::_`.
fn from_rocket(meta: &Metadata<'_>) -> bool {
    let target = meta.target();
    target == "rocket" || target.starts_with("rocket::") || target.ends_with("::_")
}
