//! The health-checking part of the schema: how each real is probed, and
//! what a service does when too few of its reals pass.
//!
//! `check` holds the types, `decode` reads them; the service-wide settings
//! (`ServiceHealth`, `QuorumLoss`) live with the other schema types, as a
//! service's `sorry_server` is a real.

pub(super) mod check;
mod decode;
#[cfg(test)]
mod tests;

pub use super::schema::{DEFAULT_QUORUM, QuorumLoss, ServiceHealth};
pub use check::*;
pub use decode::{MAX_PROBE_PERIOD, MAX_RISE_FALL, MIN_PROBE_PERIOD, parse_health_check};
