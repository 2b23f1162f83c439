//! The expectation every scheduling case shares: a new flow forwarded to
//! the real its Maglev row predicts, and recorded.

use lb_common::GlobalCounter::*;
use lb_tests::frames::Packet;

use crate::harness::{Case, Lb, MaglevRow, delta, traffic};

/// A new flow: forwarded (XDP_TX) to the real the row predicts for it.
pub(super) fn new_flow(lb: &Lb, row: &MaglevRow, name: impl Into<String>, packet: &Packet) -> Case {
    let real = lb.real(row.predict(&packet.flow_key()));
    Case::tx(name, packet, real).counts(FlowNew)
}

/// Sends `packet` as a new flow and checks everything a forwarded packet
/// leaves behind: the flow entry and the service and real traffic counters.
pub(super) fn expect_new_flow(
    lb: &mut Lb,
    row: &MaglevRow,
    service_id: u32,
    name: &str,
    packet: &Packet,
) {
    let key = packet.flow_key();
    let real_id = row.predict(&key);
    let (service_before, real_before) =
        (lb.service_counters(service_id), lb.real_counters(real_id));
    let case = new_flow(lb, row, name, packet);
    let frame_len = case.frame.len();
    lb.expect(&case);

    let flow = lb
        .flow(&key)
        .unwrap_or_else(|| panic!("{name}: no flow entry recorded"));
    assert_eq!(
        (flow.real_id, flow.service_id),
        (real_id, service_id),
        "{name}: flow entry"
    );
    assert_ne!(flow.last_seen_ns, 0, "{name}: flow timestamp");
    let one_new_packet = traffic(1, frame_len, 1, 0);
    assert_eq!(
        delta(lb.service_counters(service_id), service_before),
        one_new_packet,
        "{name}: service counters"
    );
    assert_eq!(
        delta(lb.real_counters(real_id), real_before),
        one_new_packet,
        "{name}: real counters"
    );
}
