//! The contest backend: Sign in with Apple, contests run as actors, paid
//! entries through Stripe. See README.md for the architecture.

pub mod actors;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod metrics;
pub mod payments;
pub mod startup;
pub mod store;
pub mod telemetry;
