//! The runner of the data-plane fixtures, in the Katran tradition
//! (`katran/lib/testing` keeps fixtures, runner and packet builder apart):
//! the case tables live in the feature modules, the frames come from
//! `lb_tests::frames`, and this module loads the compiled program, writes
//! what a case needs into its maps, runs a case and compares.
//!
//! Everything expected is computed independently of the code under test:
//! frames (input and expected output) are built with `etherparse`, and the
//! real a flow must land on is predicted from the Maglev row the test wrote
//! itself plus the contract's `flow_hash`. The only thing the data plane
//! contributes is what it actually did.

mod case;
mod lb;
mod run;
mod thread;

pub use case::{Case, assert_no_mismatches, counter_mismatches, delta, hex, traffic, xdp};
pub use lb::{INGRESS_IFINDEX, Lb, MAGLEV_TABLE_SIZE, MaglevRow, real};
pub use run::test_run;
pub use thread::{add_veth_pair, in_private_netns, pin_to_current_cpu};
