//! The kernel's verifier accepts every program in the embedded object.
//! Needs root (CAP_BPF); `cargo xtask test` runs it as such.
use lb_userspace::dataplane::{Dataplane, Geometry};

#[test]
fn embedded_object_loads_and_verifies() {
    let geometry = Geometry {
        maglev_table_size: 251,
        flow_table_entries: 1024,
        ..Geometry::default()
    };
    let dataplane = Dataplane::load(geometry, None).expect("the verifier accepts the data plane");
    assert!(!dataplane.adopted);
}
