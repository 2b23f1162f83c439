//! The kernel's verifier accepts every program in the embedded object.
//! Needs root (CAP_BPF); `cargo xtask test` runs it as such.
use aya::programs::{TestRun as _, TestRunOptions};
use lb_common::{BenchFrame, bench::programs as bench_programs, programs};
use lb_userspace::dataplane::{Dataplane, Geometry, bench::BenchPrograms};

/// The kernel's `enum xdp_action`.
const XDP_PASS: u32 = 2;

fn small() -> Geometry {
    Geometry {
        maglev_table_size: 251,
        flow_table_entries: 1024,
        ..Geometry::default()
    }
}

#[test]
fn embedded_object_loads_and_verifies() {
    let dataplane = Dataplane::load(small(), None).expect("the verifier accepts the data plane");
    assert!(!dataplane.adopted);
}

/// The benchmark's own object verifies too, and its `lb_replay` restores
/// the template over whatever frame it is given before handing it to a
/// program of the data plane's object (here `lb_pass`).
#[test]
fn benchmark_object_loads_verifies_and_replays_into_the_data_plane() {
    let mut bench = BenchPrograms::load().expect("the verifier accepts the benchmark's programs");
    let mut dataplane = Dataplane::load(small(), None).expect("the data plane loads");
    let pass = dataplane.program_mut(programs::PASS).unwrap().fd().unwrap();
    let template = BenchFrame(std::array::from_fn(|i| i as u8));
    bench.replay_into(pass, template).unwrap();
    let mut out = vec![0u8; 128];
    let result = bench
        .program_mut(bench_programs::REPLAY)
        .unwrap()
        .test_run(TestRunOptions {
            data_in: Some(&[0xee; 60]),
            data_out: Some(&mut out),
            ..TestRunOptions::new()
        })
        .expect("a test run");
    assert_eq!(result.return_value, XDP_PASS);
    assert_eq!(&out[..result.data_size_out as usize], &template.0[..]);
}
