//! Accounts: users, login sessions, email verification, passwords, admin users, outbox.

pub mod mail;
pub mod model;
pub mod routes;
pub mod store;
