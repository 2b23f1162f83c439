//! Established flows: kept on their real, rescheduled when it is gone.

use lb_common::GlobalCounter::*;
use lb_common::{REAL_ACTIVE, proto};
use lb_tests::frames::Packet;

use super::new_flows::{expect_new_flow, new_flow};
use crate::{
    addresses::{CLIENT4, WEB4},
    harness::{Case, Lb, MaglevRow, delta, traffic},
};

/// IPVS's `expire_nodest_conn`: flows whose real is gone are scheduled
/// afresh instead of dropped.
fn expire_nodest_conn() -> lb_common::Settings {
    lb_common::Settings {
        flags: lb_common::SETTINGS_EXPIRE_NODEST_CONN,
        ..lb_common::Settings::IPVS_DEFAULTS
    }
}

/// A real of the same three-real service other than `real_id`.
fn other_real(real_id: u32) -> u32 {
    if real_id == 1 { 2 } else { 1 }
}

#[test]
fn established_flow_keeps_its_real_after_maglev_moves_and_a_syn_reschedules() {
    let mut lb = Lb::load();
    let row = lb.service_with_three_reals(WEB4, proto::TCP, 1, 1);
    let syn = Packet::tcp_syn(CLIENT4, WEB4);
    let ack = Packet::tcp_ack(CLIENT4, WEB4);
    let r = row.predict(&syn.flow_key());
    let s = other_real(r);

    expect_new_flow(&mut lb, &row, 1, "SYN opens the flow on R", &syn);

    // Every slot now points at S: only the flow table remembers R.
    lb.set_maglev_row(1, &MaglevRow::all(s));
    let service_before = lb.service_counters(1);
    let real_before = lb.real_counters(r);
    let ack_case =
        Case::tx("ACK of the established flow stays on R", &ack, lb.real(r)).counts(FlowHit);
    let ack_len = ack_case.frame.len();
    lb.expect(&ack_case);
    let established = traffic(1, ack_len, 0, 0);
    assert_eq!(delta(lb.service_counters(1), service_before), established);
    assert_eq!(delta(lb.real_counters(r), real_before), established);
    assert_eq!(lb.flow(&ack.flow_key()).map(|f| f.real_id), Some(r));

    // A new SYN on the same 5-tuple is a new connection (port reuse): it is
    // scheduled afresh, and the flow entry follows it.
    let new_syn =
        Case::tx("new SYN on the same 5-tuple goes to S", &syn, lb.real(s)).counts(FlowNew);
    lb.expect(&new_syn);
    assert_eq!(lb.flow(&syn.flow_key()).map(|f| f.real_id), Some(s));
    let ack_to_s = Case::tx("then its ACK sticks to S", &ack, lb.real(s)).counts(FlowHit);
    lb.expect(&ack_to_s);
}

/// After a restart (or an LRU eviction) the flow table has forgotten the
/// connection: its next packet is scheduled by Maglev like a new flow, and
/// lands where the SYN went as long as the row has not changed.
#[test]
fn mid_connection_packet_without_a_flow_entry_is_scheduled_by_maglev() {
    let mut lb = Lb::load();
    let row = lb.service_with_three_reals(WEB4, proto::TCP, 1, 1);
    let ack = Packet::tcp_ack(CLIENT4, WEB4);
    let syn_real = row.predict(&Packet::tcp_syn(CLIENT4, WEB4).flow_key());
    assert_eq!(row.predict(&ack.flow_key()), syn_real, "same 5-tuple");

    lb.expect(&new_flow(&lb, &row, "ACK without a flow entry", &ack));
    let flow = lb.flow(&ack.flow_key()).expect("the flow is recorded");
    assert_eq!((flow.real_id, flow.service_id), (syn_real, 1));
    lb.expect(&Case::tx("the next ACK is a hit", &ack, lb.real(syn_real)).counts(FlowHit));
}

/// Under expire_nodest_conn, a service on three reals (after `more` set
/// up whatever else the test needs) and a SYN that opens its flow on R.
/// Returns the flow's ACK, R and another real S.
fn flow_on_r(lb: &mut Lb, more: impl FnOnce(&mut Lb)) -> (Packet, u32, u32) {
    lb.set_settings(expire_nodest_conn());
    let row = lb.service_with_three_reals(WEB4, proto::TCP, 1, 1);
    more(lb);
    let syn = Packet::tcp_syn(CLIENT4, WEB4);
    let r = row.predict(&syn.flow_key());
    expect_new_flow(lb, &row, 1, "SYN opens the flow on R", &syn);
    (Packet::tcp_ack(CLIENT4, WEB4), r, other_real(r))
}

/// With expire_nodest_conn (without it, such packets are dropped: see
/// `scheduler::gone_reals`).
#[test]
fn flow_whose_real_was_removed_is_rescheduled() {
    let mut lb = Lb::load();
    let (ack, r, s) = flow_on_r(&mut lb, |_| {});

    // The daemon removes R: clears its entry's REAL_ACTIVE and rebuilds the
    // row without it.
    let mut removed = *lb.real(r);
    removed.flags &= !REAL_ACTIVE;
    lb.set_real(r, removed);
    lb.set_maglev_row(1, &MaglevRow::all(s));

    let rescheduled = Case::tx(
        "ACK of a flow whose real is gone goes to S",
        &ack,
        lb.real(s),
    )
    .counts(FlowRescheduled)
    .counts(FlowNew);
    lb.expect(&rescheduled);
    assert_eq!(lb.flow(&ack.flow_key()).map(|f| f.real_id), Some(s));
    let sticks = Case::tx("the next ACK is a plain hit on S", &ack, lb.real(s)).counts(FlowHit);
    lb.expect(&sticks);
}

#[test]
fn flow_whose_real_id_was_reused_by_another_service_is_rescheduled() {
    let mut lb = Lb::load();
    let (ack, r, s) = flow_on_r(&mut lb, |lb| lb.service("198.18.0.20:80", proto::TCP, 2));

    // R was removed and its id handed to a real of service 2, which is
    // active: the flow must not follow the id into another service.
    let mut reused = *lb.real(r);
    reused.service_id = 2;
    reused.dst_mac = [0x02, 0x00, 0x5e, 0x20, 0x00, 0x01];
    lb.set_real(r, reused);
    lb.set_maglev_row(1, &MaglevRow::all(s));

    lb.expect(
        &Case::tx("ACK goes to S, not to the id's new owner", &ack, lb.real(s))
            .counts(FlowRescheduled)
            .counts(FlowNew),
    );
}
