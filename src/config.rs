//! Typed, validated configuration: defaults, then `config.toml`, then `SHOPBOX_*` variables
//! (nested keys joined by `__`). A bad value stops the start with a message naming the key.

use rocket::figment::providers::{Env, Format, Serialized, Toml};
use rocket::figment::Figment;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub data_dir: PathBuf,
    pub address: String,
    pub port: u16,
    /// Where clients reach the shop; defaults to `http://{address}:{port}`.
    pub public_url: Option<String>,
    pub shop_name: String,
    pub currency: String,
    /// HS256 secret; generated once into the data folder when unset.
    pub jwt_secret: Option<String>,
    pub access_token_minutes: u32,
    pub refresh_token_days: u32,
    /// Secure cookies; defaults to true when `public_url` is https.
    pub cookie_secure: Option<bool>,
    /// Memory for sled's page cache, in MiB (sled is given half: it counts pages at their
    /// size on disk, which is about half their size in memory; see `Db::open_with`).
    pub cache_capacity_mb: u64,
    /// From the environment: a JSON list or a comma-separated one.
    #[serde(deserialize_with = "list_or_commas")]
    pub trusted_proxies: Vec<String>,
    pub cors: Cors,
    pub uploads: Uploads,
    pub links: Links,
    pub smtp: Smtp,
    pub payments: Payments,
    pub log: Log,
    pub rate_limit: RateLimit,
    pub shutdown: Shutdown,
    pub backup: Backup,
    pub metrics: MetricsConfig,
    pub health: HealthConfig,
    pub limits: Limits,
    pub database: Database,
    /// Test seam, not for a real shop and not documented: once this file exists, every
    /// database flush fails as on a full disk (tests/api/disk_full.rs).
    #[doc(hidden)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_fail_flush_when: Option<PathBuf>,
}

/// Who may read `/metrics`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricsConfig {
    /// When set, `/metrics` answers only `Authorization: Bearer <token>` (else 401).
    pub token: Option<String>,
}

/// What `/health` checks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthConfig {
    /// Below this much free space (MiB) on the data folder's disk, `/health` says
    /// `degraded`; 0 turns the check off.
    pub min_free_disk_mb: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            min_free_disk_mb: 100,
        }
    }
}

/// What one client may hold of the server: time to send a request's head, and
/// connections open at once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Seconds a client gets to send a request's line and headers (also how long an idle
    /// keep-alive connection stays open); then the connection is closed.
    pub header_timeout_secs: u64,
    /// Connections open at once; beyond it, new ones wait in the listen backlog until one
    /// closes. Kept below the process's open-file limit.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout_secs: 10,
            max_connections: 4096,
        }
    }
}

/// Where the shop's data lives: the data folder (sled, the default), or a PostgreSQL
/// database when `url` is set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Database {
    /// `postgres://user:password@host:5432/shop`: serve from this PostgreSQL database
    /// instead of the data folder's (also `serve --database URL`).
    pub url: Option<String>,
    /// Connections the pool keeps open at most.
    pub pool_size: usize,
    /// Longest a statement may run, in milliseconds (0: no limit).
    pub statement_timeout_ms: u64,
    /// A PEM of extra CAs to trust for `sslmode=verify-full` (besides the bundled public
    /// roots).
    pub ca_file: Option<PathBuf>,
}

impl Default for Database {
    fn default() -> Self {
        Database {
            url: None,
            pool_size: 16,
            statement_timeout_ms: 30_000,
            ca_file: None,
        }
    }
}

/// How a PostgreSQL connection is secured: libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgSslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, else plain; the certificate is not checked.
    Prefer,
    /// TLS or no connection; the certificate is not checked (as libpq does).
    Require,
    /// TLS with the certificate checked: a trusted chain naming the host.
    VerifyFull,
}

/// Takes libpq's `sslmode` out of a PostgreSQL URL (or `key=value` string): the string
/// as tokio-postgres takes it (it knows no `verify-full`: that becomes `require`, the
/// check being ours) and the mode, `prefer` when none is given.
pub fn pg_ssl_mode(url: &str) -> Result<(String, PgSslMode), String> {
    const KEY: &str = "sslmode=";
    let mut out = url.to_string();
    let mut mode = PgSslMode::Prefer;
    let mut from = 0;
    while let Some(at) = out[from..].find(KEY) {
        let start = from + at;
        let value_at = start + KEY.len();
        from = value_at;
        if !matches!(out[..start].chars().last(), None | Some('?' | '&' | ' ')) {
            continue;
        }
        let end = out[value_at..]
            .find(['&', ' ', '#'])
            .map_or(out.len(), |n| value_at + n);
        let (found, taken) = match &out[value_at..end] {
            "disable" => (PgSslMode::Disable, "disable"),
            "prefer" => (PgSslMode::Prefer, "prefer"),
            "require" => (PgSslMode::Require, "require"),
            "verify-full" => (PgSslMode::VerifyFull, "require"),
            other => {
                return Err(format!(
                    "sslmode={other} is not supported (use disable, prefer, require or \
                     verify-full)"
                ))
            }
        };
        mode = found;
        out.replace_range(value_at..end, taken);
    }
    Ok((out, mode))
}

/// How the server stops on SIGTERM or Ctrl-C.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Shutdown {
    /// Seconds that requests in flight get to finish once the shop stops accepting.
    pub grace_secs: u32,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown { grace_secs: 30 }
    }
}

/// Backups the server takes by itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Backup {
    /// Hours between scheduled backups (fractions allowed); 0 takes none.
    pub interval_hours: f64,
    /// Where they go; default `{data_dir}/backups`.
    pub dir: Option<PathBuf>,
    /// How many scheduled backups to keep (the oldest beyond that are deleted).
    pub keep: u32,
}

impl Default for Backup {
    fn default() -> Self {
        Backup {
            interval_hours: 0.0,
            dir: None,
            keep: 7,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Cors {
    #[serde(deserialize_with = "list_or_commas")]
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Uploads {
    pub max_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Links {
    /// Path (or absolute URL) of the email verification link.
    pub verify: String,
    /// Path (or absolute URL) of the password reset page.
    pub reset: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Smtp {
    /// Without a host, mail stays in the outbox (and the log) only.
    pub host: Option<String>,
    /// Defaults to the usual port of `tls`: 587, 465 or 25.
    pub port: Option<u16>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
    pub tls: SmtpTls,
    /// A PEM file of extra CA certificates to trust (a relay with a private CA).
    pub ca_file: Option<PathBuf>,
    /// First retry after a failed attempt; each later one waits twice as long, up to
    /// `retry_max_secs`.
    pub retry_min_secs: u64,
    pub retry_max_secs: u64,
    /// A mail not delivered this long after it was written is given up.
    pub give_up_hours: u64,
}

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which the server must offer (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte, "smtps" (port 465).
    Tls,
    /// No encryption: a relay on the same machine or network (port 25).
    None,
}

impl Smtp {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        })
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Payments {
    /// Share of mock payments that fail at random (0 to 1), for demos.
    pub failure_rate: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Log {
    pub format: LogFormat,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimit {
    pub enabled: bool,
    pub login_per_minute: u32,
    pub register_per_hour: u32,
    pub forgot_password_per_hour: u32,
    pub verify_request_per_hour: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("data"),
            address: "127.0.0.1".into(),
            port: 8000,
            public_url: None,
            shop_name: "shopbox".into(),
            currency: "USD".into(),
            jwt_secret: None,
            access_token_minutes: 15,
            refresh_token_days: 7,
            cookie_secure: None,
            cache_capacity_mb: 64,
            trusted_proxies: Vec::new(),
            cors: Cors::default(),
            uploads: Uploads::default(),
            links: Links::default(),
            smtp: Smtp::default(),
            payments: Payments::default(),
            log: Log::default(),
            rate_limit: RateLimit::default(),
            shutdown: Shutdown::default(),
            backup: Backup::default(),
            metrics: MetricsConfig::default(),
            health: HealthConfig::default(),
            limits: Limits::default(),
            database: Database::default(),
            test_fail_flush_when: None,
        }
    }
}

impl Default for Uploads {
    fn default() -> Self {
        Uploads {
            max_bytes: 5 * 1024 * 1024,
        }
    }
}

impl Default for Links {
    fn default() -> Self {
        Links {
            verify: "/api/account/verify".into(),
            reset: "/reset-password".into(),
        }
    }
}

impl Default for Smtp {
    fn default() -> Self {
        Smtp {
            host: None,
            port: None,
            username: None,
            password: None,
            from: "shopbox <no-reply@localhost>".into(),
            tls: SmtpTls::Starttls,
            ca_file: None,
            retry_min_secs: 30,
            retry_max_secs: 3600,
            give_up_hours: 48,
        }
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            enabled: true,
            login_per_minute: 30,
            register_per_hour: 60,
            forgot_password_per_hour: 10,
            verify_request_per_hour: 10,
        }
    }
}

const ENV_PREFIX: &str = "SHOPBOX_";

/// `SHOPBOX_*` variables that are not configuration keys: read by one command, or by the
/// tests. Variables starting with `SHOPBOX_TEST_` belong to the test suite.
const OTHER_ENV: [&str; 2] = ["SHOPBOX_PG_URL", "SHOPBOX_ADMIN_PASSWORD"];

/// Where a key's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env(String),
    /// A command-line option, such as `--port`.
    Flag(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(path) => write!(f, "file {}", path.display()),
            Source::Env(name) => write!(f, "environment {name}"),
            Source::Flag(flag) => write!(f, "command line {flag}"),
        }
    }
}

/// The source of every key not at its default, by dotted key (`smtp.host`).
#[derive(Debug, Clone, Default)]
pub struct Sources(pub std::collections::BTreeMap<String, Source>);

impl Sources {
    pub fn of(&self, key: &str) -> &Source {
        self.0.get(key).unwrap_or(&Source::Default)
    }
}

/// Every key the configuration has: leaves (`port`, `smtp.host`, `trusted_proxies`) and
/// sections (`smtp`), taken from the defaults themselves so that no list goes stale.
struct KnownKeys {
    leaves: Vec<String>,
    sections: Vec<String>,
}

impl KnownKeys {
    fn new() -> KnownKeys {
        let mut keys = KnownKeys {
            leaves: Vec::new(),
            sections: Vec::new(),
        };
        let defaults = serde_json::to_value(Config::default()).unwrap_or_default();
        keys.collect(&defaults, "");
        keys
    }

    fn collect(&mut self, value: &serde_json::Value, prefix: &str) {
        let Some(map) = value.as_object() else { return };
        for (key, value) in map {
            let path = join_key(prefix, key);
            if value.is_object() {
                self.collect(value, &path);
                self.sections.push(path);
            } else {
                self.leaves.push(path);
            }
        }
    }

    fn is_leaf(&self, key: &str) -> bool {
        self.leaves.iter().any(|k| k == key)
    }

    fn is_section(&self, key: &str) -> bool {
        self.sections.iter().any(|k| k == key)
    }

    /// The known key closest to `key` by edit distance.
    fn closest(&self, key: &str) -> &str {
        self.leaves
            .iter()
            .min_by_key(|k| strsim::levenshtein(k, key))
            .map(String::as_str)
            .unwrap_or("")
    }

    fn check_file(
        &self,
        dict: &rocket::figment::value::Dict,
        prefix: &str,
        path: &Path,
        sources: &mut Sources,
    ) -> Result<(), ConfigError> {
        for (key, value) in dict {
            let full = join_key(prefix, key);
            if self.is_leaf(&full) {
                sources.0.insert(full, Source::File(path.to_path_buf()));
            } else if let (true, Some(inner)) = (self.is_section(&full), value.as_dict()) {
                self.check_file(inner, &full, path, sources)?;
            } else {
                return Err(ConfigError(format!(
                    "unknown key `{full}` in {}: did you mean `{}`?",
                    path.display(),
                    self.closest(&full)
                )));
            }
        }
        Ok(())
    }

    fn check_env(&self, name: &str, sources: &mut Sources) -> Result<(), ConfigError> {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            return Ok(());
        };
        if rest.is_empty() || rest.starts_with("TEST_") || OTHER_ENV.contains(&name) {
            return Ok(());
        }
        let key = rest.to_ascii_lowercase().replace("__", ".");
        if self.is_leaf(&key) {
            sources.0.insert(key, Source::Env(name.to_string()));
        } else if self.is_section(&key) {
            let inner = format!("{key}.");
            for leaf in self.leaves.iter().filter(|k| k.starts_with(&inner)) {
                sources
                    .0
                    .insert(leaf.clone(), Source::Env(name.to_string()));
            }
        } else {
            return Err(ConfigError(format!(
                "unknown environment variable {name}: did you mean {}?",
                env_name(self.closest(&key))
            )));
        }
        Ok(())
    }
}

fn join_key(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// The variable that sets a dotted key: `smtp.host` is `SHOPBOX_SMTP__HOST`.
pub fn env_name(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        key.to_ascii_uppercase().replace('.', "__")
    )
}

/// A configuration problem, naming the key.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn bad(key: &str, why: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("invalid configuration: `{key}` {why}"))
}

impl Config {
    /// Reads `file` (or `config.toml` in the working folder when `None`; an explicitly
    /// named file must exist), then the `SHOPBOX_*` environment, then validates.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_with_sources(file).map(|(config, _)| config)
    }

    /// `load`, and where each key's value came from. An unknown key in the file or an
    /// unknown `SHOPBOX_*` variable stops here, naming the closest known key.
    pub fn load_with_sources(file: Option<&Path>) -> Result<(Config, Sources), ConfigError> {
        let keys = KnownKeys::new();
        let mut sources = Sources::default();
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        let file = match file {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError(format!(
                        "configuration file {} not found",
                        path.display()
                    )));
                }
                Some(path.to_path_buf())
            }
            None => Some(PathBuf::from("config.toml")).filter(|p| p.is_file()),
        };
        if let Some(path) = &file {
            let toml = Toml::file_exact(path);
            let data = rocket::figment::Provider::data(&toml)
                .map_err(|e| ConfigError(format!("invalid configuration: {e}")))?;
            for dict in data.values() {
                keys.check_file(dict, "", path, &mut sources)?;
            }
            figment = figment.merge(toml);
        }
        for (name, _) in std::env::vars_os() {
            let Some(name) = name.to_str() else { continue };
            keys.check_env(name, &mut sources)?;
        }
        figment = figment.merge(Env::prefixed(ENV_PREFIX).split("__"));
        let config: Config = figment.extract().map_err(|e| {
            let key = e.path.join(".");
            let mut message = e.kind.to_string();
            if let Some(source) = e.metadata.as_ref().map(|m| m.name.to_string()) {
                message = format!("{message} (from {source})");
            }
            if key.is_empty() {
                ConfigError(format!("invalid configuration: {message}"))
            } else {
                bad(&key, message)
            }
        })?;
        config.validate()?;
        Ok((config, sources))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.address.parse::<IpAddr>().is_err() {
            return Err(bad("address", "must be an IP address such as 127.0.0.1"));
        }
        if let Some(url) = &self.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
                return Err(bad("public_url", "must start with http:// or https://"));
            }
        }
        if self.shop_name.trim().is_empty() {
            return Err(bad("shop_name", "must not be empty"));
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(bad(
                "currency",
                "must be a 3-letter ISO 4217 code such as USD",
            ));
        }
        if let Some(secret) = &self.jwt_secret {
            if secret.len() < 32 {
                return Err(bad("jwt_secret", "must be at least 32 characters"));
            }
        }
        if self.access_token_minutes == 0 || self.access_token_minutes > 24 * 60 {
            return Err(bad("access_token_minutes", "must be between 1 and 1440"));
        }
        if self.refresh_token_days == 0 || self.refresh_token_days > 365 {
            return Err(bad("refresh_token_days", "must be between 1 and 365"));
        }
        if self.cache_capacity_mb == 0 {
            return Err(bad("cache_capacity_mb", "must be at least 1"));
        }
        for (i, cidr) in self.trusted_proxies.iter().enumerate() {
            if parse_cidr(cidr).is_none() {
                return Err(bad(
                    &format!("trusted_proxies[{i}]"),
                    format!("`{cidr}` is not an address or CIDR such as 10.0.0.0/8"),
                ));
            }
        }
        for (i, origin) in self.cors.allowed_origins.iter().enumerate() {
            if !(origin.starts_with("http://") || origin.starts_with("https://"))
                || origin.ends_with('/')
            {
                return Err(bad(
                    &format!("cors.allowed_origins[{i}]"),
                    format!("`{origin}` must be an origin such as https://shop.example.com"),
                ));
            }
        }
        if self.uploads.max_bytes == 0 {
            return Err(bad("uploads.max_bytes", "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.payments.failure_rate) {
            return Err(bad("payments.failure_rate", "must be between 0 and 1"));
        }
        let limits = [
            (
                "rate_limit.login_per_minute",
                self.rate_limit.login_per_minute,
            ),
            (
                "rate_limit.register_per_hour",
                self.rate_limit.register_per_hour,
            ),
            (
                "rate_limit.forgot_password_per_hour",
                self.rate_limit.forgot_password_per_hour,
            ),
            (
                "rate_limit.verify_request_per_hour",
                self.rate_limit.verify_request_per_hour,
            ),
        ];
        for (key, value) in limits {
            if value == 0 {
                return Err(bad(
                    key,
                    "must be at least 1 (turn limits off with rate_limit.enabled = false)",
                ));
            }
        }
        if self
            .smtp
            .host
            .as_deref()
            .is_some_and(|h| h.trim().is_empty())
        {
            return Err(bad("smtp.host", "must not be empty when set"));
        }
        if self.smtp.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(bad(
                "smtp.from",
                "must be an address such as `shop <no-reply@example.com>`",
            ));
        }
        if self.smtp.username.is_some() != self.smtp.password.is_some() {
            return Err(bad(
                "smtp.username",
                "and smtp.password go together: set both or neither",
            ));
        }
        if self.smtp.port == Some(0) {
            return Err(bad("smtp.port", "must be between 1 and 65535"));
        }
        if self.smtp.retry_min_secs == 0 || self.smtp.retry_max_secs < self.smtp.retry_min_secs {
            return Err(bad(
                "smtp.retry_min_secs",
                "must be at least 1 and at most smtp.retry_max_secs",
            ));
        }
        if self.smtp.give_up_hours == 0 {
            return Err(bad("smtp.give_up_hours", "must be at least 1"));
        }
        if self.shutdown.grace_secs > 3600 {
            return Err(bad("shutdown.grace_secs", "must be at most 3600"));
        }
        if !(self.backup.interval_hours.is_finite() && self.backup.interval_hours >= 0.0) {
            return Err(bad("backup.interval_hours", "must be 0 (none) or more"));
        }
        if self
            .metrics
            .token
            .as_deref()
            .is_some_and(|t| t.trim().len() < 16 || t.trim() != t)
        {
            return Err(bad(
                "metrics.token",
                "must be at least 16 characters, without spaces around it",
            ));
        }
        if self.limits.header_timeout_secs == 0 || self.limits.header_timeout_secs > 3600 {
            return Err(bad(
                "limits.header_timeout_secs",
                "must be between 1 and 3600",
            ));
        }
        if self.limits.max_connections == 0 {
            return Err(bad("limits.max_connections", "must be at least 1"));
        }
        if self.backup.keep == 0 {
            return Err(bad("backup.keep", "must be at least 1"));
        }
        if let Some(url) = &self.database.url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(bad(
                    "database.url",
                    "must be a PostgreSQL URL such as postgres://user@host:5432/shop",
                ));
            }
            let (taken, _) = pg_ssl_mode(url).map_err(|e| bad("database.url", e))?;
            if let Err(e) = taken.parse::<tokio_postgres::Config>() {
                return Err(bad("database.url", format!("is not a valid URL: {e}")));
            }
        }
        if self.database.pool_size == 0 || self.database.pool_size > 1000 {
            return Err(bad("database.pool_size", "must be between 1 and 1000"));
        }
        Ok(())
    }

    /// The URL clients use to reach the shop, without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => {
                let host = match self.address.as_str() {
                    "0.0.0.0" | "::" => "localhost".to_string(),
                    a if a.contains(':') => format!("[{a}]"),
                    a => a.to_string(),
                };
                format!("http://{host}:{}", self.port)
            }
        }
    }

    /// Where scheduled backups go.
    pub fn backup_dir(&self) -> PathBuf {
        self.backup
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("backups"))
    }

    pub fn cookie_secure(&self) -> bool {
        self.cookie_secure
            .unwrap_or_else(|| self.public_url().starts_with("https://"))
    }
}

/// Keys whose values are never printed.
const SECRET_KEYS: [&str; 3] = ["jwt_secret", "smtp.password", "metrics.token"];

/// `shopbox config`: the configuration in force, one `key = value  # source` line per
/// key, secrets masked. `data` is the `--data` option.
pub fn show(file: Option<&Path>, data: Option<&Path>) -> Result<String, String> {
    let (mut config, mut sources) = Config::load_with_sources(file).map_err(|e| e.0)?;
    if let Some(data) = data {
        config.data_dir = data.to_path_buf();
        sources
            .0
            .insert("data_dir".into(), Source::Flag("--data".into()));
    }
    Ok(describe(&config, &sources))
}

/// The lines `shopbox config` prints.
pub fn describe(config: &Config, sources: &Sources) -> String {
    let mut values = Vec::new();
    let json = serde_json::to_value(config).unwrap_or_default();
    flatten(&json, "", &mut values);
    let mut lines: Vec<(String, String)> = values
        .into_iter()
        .map(|(key, value)| {
            let shown = match value {
                serde_json::Value::Null if key == "jwt_secret" => format!(
                    "(unset: generated into {})",
                    config.data_dir.join("jwt_secret").display()
                ),
                serde_json::Value::Null => "(unset)".to_string(),
                _ if SECRET_KEYS.contains(&key.as_str()) => "\"********\"".to_string(),
                serde_json::Value::String(text) => {
                    serde_json::Value::String(mask_url_password(&text)).to_string()
                }
                other => other.to_string(),
            };
            let line = format!("{key} = {shown}");
            (line, sources.of(&key).to_string())
        })
        .collect();
    for name in OTHER_ENV {
        if let Ok(value) = std::env::var(name) {
            let shown = if name.ends_with("PASSWORD") {
                "********".to_string()
            } else {
                mask_url_password(&value)
            };
            lines.push((
                format!("({name} = {shown})"),
                "environment, read by its commands".into(),
            ));
        }
    }
    let width = lines.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (line, source) in lines {
        out.push_str(&format!("{line:width$}  # {source}\n"));
    }
    out.truncate(out.trim_end().len());
    out
}

fn flatten(value: &serde_json::Value, prefix: &str, out: &mut Vec<(String, serde_json::Value)>) {
    if let Some(map) = value.as_object() {
        for (key, value) in map {
            let path = join_key(prefix, key);
            if value.is_object() {
                flatten(value, &path, out);
            } else {
                out.push((path, value.clone()));
            }
        }
    }
}

/// `postgres://user:secret@host/db` becomes `postgres://user:********@host/db`.
pub fn mask_url_password(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_string();
    };
    let rest = &text[scheme_end + 3..];
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let Some(at) = authority.rfind('@') else {
        return text.to_string();
    };
    let Some(colon) = authority[..at].find(':') else {
        return text.to_string();
    };
    let start = scheme_end + 3 + colon + 1;
    let end = scheme_end + 3 + at;
    format!("{}********{}", &text[..start], &text[end..])
}

/// A list given as a list, or as one string of comma-separated items (what an environment
/// variable holds most naturally: `SHOPBOX_TRUSTED_PROXIES=10.0.0.0/8,192.168.0.1`).
fn list_or_commas<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct ListOrCommas;
    impl<'de> serde::de::Visitor<'de> for ListOrCommas {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of strings, or one string of comma-separated items")
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Vec<String>, E> {
            Ok(text
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect())
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Vec<String>, A::Error> {
            let mut list = Vec::new();
            while let Some(item) = seq.next_element::<String>()? {
                list.push(item);
            }
            Ok(list)
        }
    }
    d.deserialize_any(ListOrCommas)
}

/// Parses `a.b.c.d/n`, `a.b.c.d`, or their IPv6 forms into an address and prefix length.
pub fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = match text.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (text, None),
    };
    let addr: IpAddr = addr.trim().parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        Some(b) => b.trim().parse::<u8>().ok().filter(|b| *b <= max)?,
        None => max,
    };
    Some((addr, bits))
}

/// Reads the JWT secret from config, or from `data_dir/jwt_secret`, creating that file
/// (owner-only) with a fresh random secret the first time.
pub fn jwt_secret(config: &Config) -> Result<String, ConfigError> {
    if let Some(secret) = &config.jwt_secret {
        return Ok(secret.clone());
    }
    let path = config.data_dir.join("jwt_secret");
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 32 => return Ok(s.trim().to_string()),
        Ok(_) => {
            return Err(ConfigError(format!(
                "{} is too short; delete it to generate a new secret",
                path.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(ConfigError(format!("cannot read {}: {e}", path.display()))),
    }
    let secret = hex::encode(rand::random::<[u8; 32]>());
    write_private(&path, secret.as_bytes())
        .map_err(|e| ConfigError(format!("cannot write {}: {e}", path.display())))?;
    Ok(secret)
}

/// Creates the data folder, and makes it and everything in it readable by its owner
/// only, whatever their modes were (a folder copied or checked out as 0755, files
/// written by an older version). Files created later by this process are owner-only
/// too: the umask becomes 077.
pub fn create_data_dir(dir: &Path) -> Result<(), ConfigError> {
    let fail = |e: std::io::Error| {
        ConfigError(format!(
            "cannot create the data folder {}: {e}",
            dir.display()
        ))
    };
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file mode mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    if !dir.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(fail)?;
    }
    std::fs::create_dir_all(dir.join("media")).map_err(fail)?;
    #[cfg(unix)]
    owner_only(dir, true).map_err(|e| {
        ConfigError(format!(
            "cannot make the data folder {} owner-only: {e}",
            dir.display()
        ))
    })?;
    Ok(())
}

/// Takes the group and other permission bits off `path` and what is in it. A folder
/// that was already owner-only is not descended into (its contents are out of others'
/// reach whatever their modes, and a shop's media folder may hold 100,000 files): only
/// the data folder itself always is. Symbolic links are left alone (their targets are
/// not shopbox's).
#[cfg(unix)]
fn owner_only(path: &Path, always_descend: bool) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode();
    let loose = mode & 0o077 != 0;
    if loose {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7700))?;
    }
    if meta.is_dir() && (loose || always_descend) {
        for entry in std::fs::read_dir(path)? {
            owner_only(&entry?.path(), false)?;
        }
    }
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_is_taken_out_of_the_url() {
        let mode = pg_ssl_mode;
        assert_eq!(
            mode("postgres://a@h/db").unwrap(),
            ("postgres://a@h/db".into(), PgSslMode::Prefer)
        );
        assert_eq!(
            mode("postgres://a@h/db?sslmode=verify-full&options=x").unwrap(),
            (
                "postgres://a@h/db?sslmode=require&options=x".into(),
                PgSslMode::VerifyFull
            )
        );
        assert_eq!(
            mode("host=h sslmode=disable").unwrap(),
            ("host=h sslmode=disable".into(), PgSslMode::Disable)
        );
        assert_eq!(
            mode("postgres://a@h/db?xsslmode=verify-full").unwrap().1,
            PgSslMode::Prefer
        );
        let e = mode("postgres://a@h/db?sslmode=verify-ca").unwrap_err();
        assert!(e.starts_with("sslmode=verify-ca is not supported"), "{e}");
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!(c.public_url(), "http://127.0.0.1:8000");
        assert!(!c.cookie_secure());
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut c = Config::default();
        c.payments.failure_rate = 2.0;
        assert!(c
            .validate()
            .unwrap_err()
            .0
            .contains("payments.failure_rate"));
        let c = Config {
            trusted_proxies: vec!["10.0.0.0/99".into()],
            ..Config::default()
        };
        assert!(c.validate().unwrap_err().0.contains("trusted_proxies[0]"));
        let c = Config {
            currency: "dollars".into(),
            ..Config::default()
        };
        assert!(c.validate().unwrap_err().0.contains("currency"));
    }

    #[test]
    fn unknown_keys_get_the_closest_known_one() {
        let keys = KnownKeys::new();
        assert_eq!(keys.closest("prot"), "port");
        assert_eq!(keys.closest("smtp.hots"), "smtp.host");
        assert_eq!(keys.closest("rate_limit_enabled"), "rate_limit.enabled");
        assert!(keys.is_section("smtp") && !keys.is_leaf("smtp"));
        assert!(keys.is_leaf("smtp.host") && keys.is_leaf("trusted_proxies"));
        assert_eq!(
            env_name("rate_limit.enabled"),
            "SHOPBOX_RATE_LIMIT__ENABLED"
        );
    }

    #[test]
    fn url_passwords_are_masked() {
        assert_eq!(
            mask_url_password("postgres://shop:s3cret@db:5432/shop?sslmode=require"),
            "postgres://shop:********@db:5432/shop?sslmode=require"
        );
        assert_eq!(
            mask_url_password("postgres://shop@db/shop"),
            "postgres://shop@db/shop"
        );
        assert_eq!(mask_url_password("not a url"), "not a url");
    }

    #[test]
    fn cidrs_parse() {
        assert_eq!(parse_cidr("10.0.0.0/8").unwrap().1, 8);
        assert_eq!(parse_cidr("::1").unwrap().1, 128);
        assert!(parse_cidr("nope").is_none());
    }
}
