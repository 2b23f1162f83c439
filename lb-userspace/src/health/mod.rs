//! Health checking: probes run on the tokio runtime, rise/fall decides
//! each real's state, and the daemon turns states into scheduling.

pub mod probe;
