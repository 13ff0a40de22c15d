//! Accounts: users, login sessions, email verification, passwords, admin users, and the
//! request guards that tell who is calling.

pub mod guard;
pub mod model;
pub mod routes;
pub mod store;
