//! The log: text (or JSON) lines on stderr, filtered by `RUST_LOG` (default `info`).
//!
//! Rocket's own lines are left out unless `RUST_LOG` names `rocket`: the request line
//! (`http::request_id`) says what they would (at debug for 4xx, so a 404 or a failed data
//! guard is not an error of the shop), and start-up failures come back as one line from
//! `serve`.

use tracing::Metadata;
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

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
    let _ = match format {
        LogFormat::Text => builder.finish().with(quiet_rocket).try_init(),
        LogFormat::Json => builder.json().finish().with(quiet_rocket).try_init(),
    };
}

/// Rocket's own lines, and those its code generation puts into route handlers (a failed
/// data or request guard): their targets are Rocket's modules, or end in `::_`.
fn from_rocket(meta: &Metadata<'_>) -> bool {
    let target = meta.target();
    target == "rocket" || target.starts_with("rocket::") || target.ends_with("::_")
}
