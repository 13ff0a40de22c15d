//! Pure helpers any layer may use: disk space, log redaction, store errors, money, pagination, text, time, tokens, passwords. No domain, no HTTP.

pub mod disk;
pub mod error;
pub mod money;
pub mod page;
pub mod password;
pub mod redact;
pub mod text;
pub mod time;
pub mod tokens;
