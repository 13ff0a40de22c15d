//! The integration tests, as one test binary: the crate is linked once for all of them.
//! Each module covers one area through the real app (in process, or the release binary).

#![allow(dead_code)]

mod common;

mod account;
mod account_http;
mod backup;
mod binary;
mod browser;
mod catalog;
mod checkout;
mod commerce;
mod concurrency;
mod configuration;
mod crash;
mod crash_checkout;
mod deploy;
mod disk_full;
mod indexes;
mod instances;
mod integrity;
mod layers;
mod live_cli;
mod load;
mod log_secrets;
mod mail;
mod messages;
mod observability;
mod openapi;
mod pg;
mod pg_tls;
mod platform;
mod security;
mod shutdown;
mod slow_clients;
mod smtp_sink;
