//! Connection counts: kept by the data plane, recounted from the flow
//! table.

use lb_common::GlobalCounter::*;
use lb_common::{ConnectionState, RealConns, SCHED_FLAG_PORT, Scheduler, Settings};
use lb_tests::frames::Packet;
use lb_userspace::{dataplane::monotonic_now_ns, reaper};

use super::{
    SECOND, WEB,
    services::{client, new_to, service, syn, three_reals},
};
use crate::harness::{Case, Lb, MaglevRow, pin_to_current_cpu};

/// Every new connection adds one inactive connection to its real, once;
/// packets of known flows add nothing.
#[test]
fn every_new_connection_adds_one_inactive_connection() {
    let mut lb = Lb::load();
    let row = three_reals(&mut lb, Scheduler::Maglev, SCHED_FLAG_PORT);
    lb.set_real_conns(1, 7, 3);
    let syn = syn(&client(0));
    let ack = Packet::tcp_ack(&client(0), WEB);
    let real_id = MaglevRow(row).predict(&syn.flow_key());
    let before: Vec<RealConns> = (1..=3).map(|id| lb.real_conns(id)).collect();
    lb.expect(&new_to(&lb, "SYN", &syn, real_id));
    lb.expect(&Case::tx("ACK", &ack, lb.real(real_id)).counts(FlowHit));
    lb.expect(&Case::tx("ACK", &ack, lb.real(real_id)).counts(FlowHit));
    lb.expect(&new_to(&lb, "SYN again (port reuse)", &syn, real_id));
    for (id, before) in (1..=3).zip(before) {
        let expected = if id == real_id {
            RealConns {
                active: before.active,
                inactive: before.inactive + 2,
            }
        } else {
            before
        };
        assert_eq!(lb.real_conns(id), expected, "real {id}");
    }
}

/// The daemon's recount: established flows are active, the rest inactive,
/// per real; reals without flows are written as zero.
#[test]
fn connection_counts_are_recounted_from_the_flow_table() {
    pin_to_current_cpu();
    let mut lb = Lb::load();
    service(&mut lb, Scheduler::RoundRobin, 0, &[1, 1, 1], &[1, 2, 3]);
    lb.set_real_conns(4, 40, 40);
    // rr: connection n on real n + 1.
    for n in 0..3 {
        lb.expect(&new_to(
            &lb,
            format!("SYN {n}"),
            &syn(&client(n)),
            u32::from(n) + 1,
        ));
    }
    // Connections 0 and 1 are established; 2 is still in its handshake.
    for n in 0..2 {
        let ack = Packet::tcp_ack(&client(n), WEB);
        lb.expect(&Case::tx(format!("ACK {n}"), &ack, lb.real(u32::from(n) + 1)).counts(FlowHit));
    }
    let flow = |real_id, service_id, age: u64| lb_common::FlowState {
        real_id,
        service_id,
        last_seen_ns: monotonic_now_ns() - age * SECOND,
        state: ConnectionState::TcpEstablished as u8,
        _pad: [0; 7],
    };
    let mut other = syn(&client(9)).flow_key();
    // Expired: counts for nobody.
    other.src_port = 1;
    lb.set_flow(other, flow(2, 1, 1_000));
    // Recorded for service 2, whose real 2 is long gone (real 2 belongs to
    // service 1 now): counts for nobody either.
    other.src_port = 2;
    lb.set_flow(other, flow(2, 2, 1));
    let settings = Settings::IPVS_DEFAULTS;
    let counts = reaper::count_connections(lb.maps(), &settings, monotonic_now_ns());
    let conns = |active, inactive| RealConns { active, inactive };
    assert_eq!(counts.get(&1), Some(&conns(1, 0)));
    assert_eq!(counts.get(&2), Some(&conns(1, 0)));
    assert_eq!(counts.get(&3), Some(&conns(0, 1)));
    assert_eq!(counts.get(&4), None);
    reaper::write_connection_counts(lb.maps_mut(), &counts, 1..=4).unwrap();
    assert_eq!(lb.real_conns(1), conns(1, 0));
    assert_eq!(lb.real_conns(2), conns(1, 0));
    assert_eq!(lb.real_conns(3), conns(0, 1));
    assert_eq!(lb.real_conns(4), conns(0, 0), "no flows: zero");
}
