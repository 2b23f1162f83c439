//! One `BPF_PROG_TEST_RUN` of an XDP program, for every program the
//! fixtures run (the balancer, the reals' decapsulator).

use aya::programs::{ProgramError, TestRun as _, TestRunOptions, Xdp};

/// One run of `program` on `frame`: the action and the frame as the program
/// left it. `ingress`: as if the frame came in on that interface (an
/// ifindex of the current namespace); `None`, the namespace's loopback.
/// `repeat` stays 1: a second run would see the frame the first rewrote.
pub fn test_run(
    program: &mut Xdp,
    frame: &[u8],
    ingress: Option<u32>,
) -> Result<(u32, Vec<u8>), ProgramError> {
    // struct xdp_md { data, data_end, data_meta, ingress_ifindex,
    // rx_queue_index, egress_ifindex }: the kernel wants data and
    // data_meta 0 and data_end the frame length.
    let ctx: Vec<u8> = ingress
        .map(|ifindex| [0, frame.len() as u32, 0, ifindex, 0, 0])
        .into_iter()
        .flatten()
        .flat_map(u32::to_ne_bytes)
        .collect();
    let mut out = vec![0u8; 4096];
    let result = program.test_run(TestRunOptions {
        data_in: Some(frame),
        data_out: Some(&mut out),
        ctx_in: ingress.map(|_| ctx.as_slice()),
        ..TestRunOptions::new()
    })?;
    out.truncate(result.data_size_out as usize);
    Ok((result.return_value, out))
}
