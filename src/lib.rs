//! The contest backend: Sign in with Apple, contests run as actors, paid
//! entries through Stripe. See README.md for the architecture.

pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod http;
pub mod startup;
pub mod store;
pub mod telemetry;
