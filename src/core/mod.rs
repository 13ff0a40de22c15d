//! Pure helpers any layer may use: store errors, money, pagination, text, time, tokens, passwords. No domain, no HTTP.

pub mod error;
pub mod money;
pub mod page;
pub mod password;
pub mod text;
pub mod time;
pub mod tokens;
