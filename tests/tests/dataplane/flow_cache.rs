//! The per-CPU flow cache in front of the flow table (`lb-ebpf/src/
//! flow_cache.rs`), through the real compiled program: when a cached
//! decision is used, and every case that must go back to the table.
//!
//! The tests tell the two paths apart by rewriting a flow's table entry
//! behind the cache's back (as lbd never does without bumping the cache's
//! generation): a packet the cache answers still goes to the old real, one
//! that goes through the table goes to the new one.
//!
//! Needs root (CAP_BPF).

use crate::harness::{Case, Lb, pin_to_current_cpu};
use lb_common::{
    ConnectionState, FlowKey, FlowState, GlobalCounter::*, REAL_DOWN, flow_hash::flow_cache_slot,
    proto,
};
use lb_tests::frames::Packet;
use lb_userspace::dataplane::monotonic_now_ns;

const WEB: &str = "198.18.0.10:80";
const WEB6: &str = "[fd00:18::10]:80";

/// A service on `vip` with reals 1, 2, 3; the cache is per CPU, so the
/// test stays on one.
fn balancer(vip: &str) -> Lb {
    pin_to_current_cpu();
    let mut lb = Lb::load();
    lb.service_with_three_reals(vip, proto::TCP, 1, 1);
    lb
}

/// Points the flow's table entry at `real_id` without telling the cache.
fn rewrite_behind_the_cache(lb: &mut Lb, key: &FlowKey, real_id: u32) {
    let mut flow = lb.flow(key).expect("the flow has an entry");
    flow.real_id = real_id;
    lb.maps_mut()
        .flows
        .insert(key, flow, 0)
        .expect("write the flow");
}

fn other_real(real_id: u32) -> u32 {
    1 + real_id % 3
}

/// A balancer on `WEB` with one established flow from `client`: its ACK
/// and its real.
fn balancer_with_a_flow(client: &str) -> (Lb, Packet, u32) {
    let mut lb = balancer(WEB);
    let real = established(&mut lb, client, WEB);
    (lb, Packet::tcp_ack(client, WEB), real)
}

/// Opens a flow (SYN, then the ACK that establishes it) and returns its
/// real.
fn established(lb: &mut Lb, client: &str, vip: &str) -> u32 {
    let syn = Packet::tcp_syn(client, vip);
    let real = new_flow(lb, &syn);
    let ack = Packet::tcp_ack(client, vip);
    lb.expect(&Case::tx("ACK establishes", &ack, lb.real(real)).counts(FlowHit));
    real
}

/// Sends `syn` (a new flow) and returns the real the table recorded.
fn new_flow(lb: &mut Lb, syn: &Packet) -> u32 {
    let (action, _) = lb.try_run(&syn.bytes()).expect("run the program");
    assert_eq!(action, crate::harness::xdp::TX, "the SYN is forwarded");
    lb.flow(&syn.flow_key()).expect("a new flow entry").real_id
}

#[test]
fn a_cached_flow_skips_the_table_until_the_daemon_changes_something() {
    for vip in [WEB, WEB6] {
        let mut lb = balancer(vip);
        let client = if vip == WEB {
            "198.19.7.7:40000"
        } else {
            "[fd00:19::7]:40000"
        };
        let real = established(&mut lb, client, vip);
        let ack = Packet::tcp_ack(client, vip);
        let moved = other_real(real);
        rewrite_behind_the_cache(&mut lb, &ack.flow_key(), moved);

        lb.expect(&Case::tx(format!("{vip}: cached"), &ack, lb.real(real)).counts(FlowHit));
        lb.forget_cached_flows();
        lb.expect(
            &Case::tx(
                format!("{vip}: after the daemon's change"),
                &ack,
                lb.real(moved),
            )
            .counts(FlowHit),
        );
    }
}

#[test]
fn packets_that_change_a_flows_state_go_through_the_table() {
    let mut lb = balancer(WEB);
    let client = "198.19.7.7:40000";
    let syn = Packet::tcp_syn(client, WEB);
    let ack = Packet::tcp_ack(client, WEB);
    let key = syn.flow_key();

    // The SYN's decision is cached in state SYN_RECV; the ACK that moves
    // the flow to ESTABLISHED must write the table, so it reads it too.
    let first = new_flow(&mut lb, &syn);
    let second = other_real(first);
    rewrite_behind_the_cache(&mut lb, &key, second);
    lb.expect(&Case::tx("ACK: state change", &ack, lb.real(second)).counts(FlowHit));
    assert_eq!(
        lb.flow(&key).map(|flow| flow.state),
        Some(ConnectionState::TcpEstablished as u8)
    );

    // A SYN on an established, cached flow schedules afresh: the table's
    // new entry, not the cached real.
    let third = other_real(second);
    rewrite_behind_the_cache(&mut lb, &key, third);
    let (action, _) = lb.try_run(&syn.bytes()).expect("run the program");
    assert_eq!(action, crate::harness::xdp::TX);
    let rescheduled = lb.flow(&key).expect("the flow").real_id;
    assert_eq!(
        lb.flow(&key).map(|flow| flow.state),
        Some(ConnectionState::TcpSynSeen as u8)
    );
    lb.expect(&Case::tx("ACK after the SYN", &ack, lb.real(rescheduled)).counts(FlowHit));
}

/// The table's own timestamp is refreshed once a second; a cached
/// decision lives exactly as long, so an established flow still keeps its
/// entry fresh (and sees a rewritten entry within a second).
#[test]
fn a_cached_decision_is_checked_against_the_table_once_a_second() {
    let (mut lb, ack, real) = balancer_with_a_flow("198.19.7.7:40000");
    let key = ack.flow_key();
    let moved = other_real(real);
    rewrite_behind_the_cache(&mut lb, &key, moved);
    lb.expect(&Case::tx("within the second", &ack, lb.real(real)).counts(FlowHit));
    let seen_before = lb.flow(&key).expect("the flow").last_seen_ns;

    std::thread::sleep(std::time::Duration::from_millis(1_100));
    lb.expect(&Case::tx("a second later", &ack, lb.real(moved)).counts(FlowHit));
    let flow = lb.flow(&key).expect("the flow");
    assert!(
        flow.last_seen_ns > seen_before && flow.last_seen_ns <= monotonic_now_ns() + 10_000_000,
        "the table entry was refreshed: {seen_before} -> {}",
        flow.last_seen_ns
    );
}

/// Every cached packet reads the real's entry: a real taken out is not
/// sent to, exactly as without the cache (IPVS's default: dropped).
#[test]
fn a_cached_flow_whose_real_went_away_is_not_sent_there() {
    let (mut lb, ack, real) = balancer_with_a_flow("198.19.7.7:40000");
    let mut entry = *lb.real(real);
    entry.flags |= REAL_DOWN;
    lb.set_real(real, entry);
    lb.expect(&Case::drop("real down", ack.bytes(), DropRealRemoved));
}

/// Two flows that hash to the same slot take turns in it: each keeps its
/// own real, and a flow pushed out of its slot is read from the table.
#[test]
fn flows_sharing_a_slot_keep_their_own_reals() {
    let mut lb = balancer(WEB);
    let first = Packet::tcp_ack("198.19.7.7:40000", WEB);
    let slot = flow_cache_slot(&first.flow_key());
    let second = (40_001..=u16::MAX)
        .map(|port| Packet::tcp_ack(&format!("198.19.7.7:{port}"), WEB))
        .find(|packet| flow_cache_slot(&packet.flow_key()) == slot)
        .expect("a port whose flow shares the slot");
    let entry = |real_id| FlowState {
        real_id,
        service_id: 1,
        last_seen_ns: monotonic_now_ns(),
        state: ConnectionState::TcpEstablished as u8,
        _pad: [0; 7],
    };
    lb.set_flow(first.flow_key(), entry(1));
    lb.set_flow(second.flow_key(), entry(2));
    for round in 0..3 {
        lb.expect(&Case::tx(format!("first, round {round}"), &first, lb.real(1)).counts(FlowHit));
        lb.expect(&Case::tx(format!("second, round {round}"), &second, lb.real(2)).counts(FlowHit));
    }
    // The slot holds the second flow now: the first is read from the table.
    rewrite_behind_the_cache(&mut lb, &first.flow_key(), 3);
    lb.expect(&Case::tx("first, from the table", &first, lb.real(3)).counts(FlowHit));
}
