//! The daemon's YAML configuration (schema v1): types, loading and validation.
//!
//! Operators should see every mistake in a file at once, each as
//! `file:line:column: field.path: reason`. `serde_yaml` can do neither: it
//! stops at the first error and forgets where nodes were once it is done. So
//! the text is loaded once with `saphyr`, which marks every node (keys
//! included) with its position, and a small schema walker turns that tree into
//! a [`Config`] in two passes that both collect problems instead of stopping:
//!
//! 1. *decode*: the shape of each node, its type, range or keyword; unknown,
//!    duplicated and missing fields;
//! 2. *validate*: rules about the whole (duplicates, what each forwarding
//!    method can do with address families and ports, capacity, interfaces
//!    present on the host), located through the positions recorded while
//!    decoding.
//!
//! Going the other way, [`Config`] implements `Serialize`, so
//! `serde_yaml::to_string(&config)` prints it back in the same schema.
//!
//! The files: `schema` (the types), `limits`, `keyword` (how enums are
//! spelled), `reader` (the positional YAML reader, which knows no schema),
//! `draft` (a configuration while it is read), `decode`, `validate`,
//! `problem` and `load` (the entry points); `health` holds the health-check
//! part of the schema in the same layout; `identity` names what the data
//! plane keys by (service keys, real identities, settings).

mod decode;
mod draft;
pub mod health;
pub mod identity;
mod keyword;
mod limits;
mod load;
mod problem;
mod reader;
mod schema;
#[cfg(test)]
mod tests;
mod validate;

pub use health::HealthCheck;
pub use limits::*;
pub use load::{check, host_interface_exists, load, parse};
pub use problem::{ConfigError, Problem};
pub use schema::*;
