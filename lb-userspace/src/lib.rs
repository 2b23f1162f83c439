//! The control plane: configuration, Maglev, the data-plane maps, neighbour
//! resolution and the daemon loop. `lbd` and `lbadm` are thin shells over it.

pub mod config;
pub mod control;
pub mod daemon;
pub mod dataplane;
pub mod decap;
pub mod estimator;
pub mod health;
pub mod ipvsadm;
pub mod listing;
pub mod maglev;
pub mod metrics;
pub mod neighbours;
pub mod reaper;
pub mod reconcile;
pub mod rows;
pub mod tasks;
#[cfg(test)]
mod testing;
pub mod thresholds;
