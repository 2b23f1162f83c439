//! The flood guard (`lb-ebpf/src/flood_guard.rs`), through the real
//! compiled program: past its limit of recorded new flows a second, a new
//! flow that needs no entry is forwarded to its scheduler's real without
//! one; flows that need theirs are recorded whatever the rate.
//!
//! Needs root (CAP_BPF).

use crate::harness::{Case, Lb, MaglevRow, pin_to_current_cpu};
use lb_common::{GlobalCounter::*, Scheduler, proto};
use lb_tests::frames::Packet;

const WEB: &str = "198.18.0.10:80";
const WEB6: &str = "[fd00:18::10]:80";
const LIMIT: u32 = 2;

/// A Maglev service on `vip` with reals 1, 2, 3 and the guard at `LIMIT`.
/// The guard counts per CPU, so the test stays on one.
fn guarded(vip: &str) -> (Lb, MaglevRow) {
    pin_to_current_cpu();
    let mut lb = Lb::load();
    let row = lb.service_with_three_reals(vip, proto::TCP, 1, 1);
    lb.set_flood_guard(LIMIT);
    (lb, row)
}

fn client(vip: &str, n: u32) -> String {
    if vip == WEB {
        format!("198.19.7.{n}:40000")
    } else {
        format!("[fd00:19::{n}]:40000")
    }
}

/// The SYN of `client` goes to the real Maglev picks, counted as a new
/// flow (and as unrecorded when `unrecorded`); returns whether the flow
/// table has it.
fn new_flow(lb: &mut Lb, row: &MaglevRow, client: &str, vip: &str, unrecorded: bool) -> bool {
    let syn = Packet::tcp_syn(client, vip);
    let real = row.predict(&syn.flow_key());
    let mut case = Case::tx(format!("{client}: SYN"), &syn, lb.real(real)).counts(FlowNew);
    if unrecorded {
        case = case.counts(FlowUnrecorded);
    }
    lb.expect(&case);
    lb.flow(&syn.flow_key()).is_some()
}

#[test]
fn past_the_limit_hashed_flows_are_forwarded_without_an_entry() {
    for vip in [WEB, WEB6] {
        let (mut lb, row) = guarded(vip);
        for n in 1..=LIMIT {
            assert!(new_flow(&mut lb, &row, &client(vip, n), vip, false));
        }
        let late = client(vip, LIMIT + 1);
        assert!(
            !new_flow(&mut lb, &row, &late, vip, true),
            "{vip}: recorded"
        );

        // Its next packets find the same real through the row, each one a
        // new flow again while the second lasts (and none cached).
        let ack = Packet::tcp_ack(&late, vip);
        let real = row.predict(&ack.flow_key());
        for round in 0..2 {
            lb.expect(
                &Case::tx(format!("{vip}: ACK {round}"), &ack, lb.real(real))
                    .counts(FlowNew)
                    .counts(FlowUnrecorded),
            );
        }
        assert!(lb.flow(&ack.flow_key()).is_none());

        // The next second records again: the flow's next packet is
        // recorded, in the state that packet says.
        std::thread::sleep(std::time::Duration::from_millis(1_100));
        lb.expect(
            &Case::tx(format!("{vip}: ACK, next second"), &ack, lb.real(real)).counts(FlowNew),
        );
        assert_eq!(
            lb.flow(&ack.flow_key()).map(|flow| flow.real_id),
            Some(real)
        );
        lb.expect(&Case::tx(format!("{vip}: then a hit"), &ack, lb.real(real)).counts(FlowHit));
    }
}

#[test]
fn without_a_limit_every_flow_is_recorded() {
    let (mut lb, row) = guarded(WEB);
    lb.set_flood_guard(0);
    for n in 1..=20 {
        assert!(new_flow(&mut lb, &row, &client(WEB, n), WEB, false));
    }
}

/// rr picks by position and a persistent service by its template: a flow
/// of theirs left unrecorded could move on its next packet, so past the
/// limit they are recorded all the same (and do not count against it).
#[test]
fn flows_whose_real_depends_on_more_than_the_packet_are_always_recorded() {
    let (mut lb, row) = guarded(WEB);
    for n in 1..=LIMIT {
        assert!(new_flow(&mut lb, &row, &client(WEB, n), WEB, false));
    }
    lb.configure_service(WEB, proto::TCP, |service| {
        service.scheduler = Scheduler::RoundRobin as u8;
        service.row_len = 3;
    });
    for n in 10..13 {
        let syn = Packet::tcp_syn(&client(WEB, n), WEB);
        let (action, _) = lb.try_run(&syn.bytes()).expect("run the program");
        assert_eq!(action, crate::harness::xdp::TX);
        assert!(lb.flow(&syn.flow_key()).is_some(), "rr flow {n} recorded");
    }
    lb.configure_service(WEB, proto::TCP, |service| {
        service.scheduler = Scheduler::Maglev as u8;
        service.row_len = crate::harness::MAGLEV_TABLE_SIZE;
        service.persistence_timeout = 300;
        service.persistence_prefix = 32;
    });
    for n in 20..23 {
        let syn = Packet::tcp_syn(&client(WEB, n), WEB);
        let (action, _) = lb.try_run(&syn.bytes()).expect("run the program");
        assert_eq!(action, crate::harness::xdp::TX);
        assert!(
            lb.flow(&syn.flow_key()).is_some(),
            "persistent flow {n} recorded"
        );
    }
    // Maglev without persistence is held back again: the first Maglev
    // flows reached the limit.
    lb.configure_service(WEB, proto::TCP, |service| service.persistence_timeout = 0);
    assert!(!new_flow(&mut lb, &row, &client(WEB, 30), WEB, true));
}
