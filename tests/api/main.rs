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
mod crash;
mod crash_checkout;
mod deploy;
mod indexes;
mod integrity;
mod layers;
mod load;
mod mail;
mod messages;
mod openapi;
mod pg;
mod platform;
mod security;
mod shutdown;
mod smtp_sink;
