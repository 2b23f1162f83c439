//! ipvsadm 1.31's command language, without I/O: its command-line grammar
//! ([`parse_args`]), what its table commands do to a set of virtual
//! services ([`Table::apply`]), its save format ([`save`]) and restore
//! input ([`parse_restore`]). Errors carry ipvsadm's exact wording and exit
//! status, so `lbadm` can stand in for `ipvsadm` in scripts.
//!
//! Where this product differs from ipvsadm, deliberately:
//! - without `-s`, `-A`/`-E` create `-s mh -b mh-port` (Maglev over the
//!   whole connection), not `-s wlc`; an explicit `-s mh` without `-b`
//!   means IPVS's mh: client address only;
//! - firewall-mark and SCTP services, persistence engines, one-packet
//!   scheduling, GUE/GRE tunnels and the sync daemon are refused as not
//!   supported, never ignored; host and port names are refused (numeric
//!   addresses only); a non-contiguous IPv4 persistence mask is refused;
//! - `-S` keeps `-x`/`-y`, may name one service, and `-o json` / `-o yaml`
//!   select lbadm's JSON listing / YAML export.

mod addr;
#[cfg(test)]
mod corpus_tests;
mod errors;
mod help;
mod options;
mod parse;
mod save;
mod table;
mod types;

pub use errors::{ApplyError, EXIT_FAIL, EXIT_LIST_FAILED, EXIT_MINUS_ONE, UsageError};
pub use parse::parse_args;
pub use save::{parse_restore, save, save_service};
pub use table::Table;
pub use types::{
    Command, DEFAULT_PERSISTENCE_TIMEOUT, DEFAULT_WEIGHT, Destination, Invocation, ListOptions,
    MAX_TIMEOUT, MAX_WEIGHT, Persistence, Protocol, ServiceId, VirtualService, full_prefix,
};
