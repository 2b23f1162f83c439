//! Flows whose real is gone, overloaded or at weight zero; IPv6 masks.

use std::net::IpAddr;

use lb_common::GlobalCounter::*;
use lb_common::{
    Addr, PersistKey, REAL_ACTIVE, REAL_OVERLOADED, SCHED_FLAG_PORT, SETTINGS_EXPIRE_NODEST_CONN,
    Scheduler, Settings, proto,
};
use lb_tests::frames::{Packet, ip};

use super::{
    WEB,
    services::{client, new_to, set_flags, set_weight, syn, three_reals},
};
use crate::harness::{Case, Lb, MAGLEV_TABLE_SIZE, MaglevRow, delta, pin_to_current_cpu};

#[test]
fn a_flow_whose_real_was_removed_is_dropped_unless_expire_nodest_conn() {
    let mut lb = Lb::load();
    let row = three_reals(&mut lb, Scheduler::Maglev, SCHED_FLAG_PORT);
    let syn = syn(&client(0));
    let ack = Packet::tcp_ack(&client(0), WEB);
    let r = MaglevRow(row.clone()).predict(&syn.flow_key());
    let s = if r == 1 { 2 } else { 1 };
    lb.expect(&new_to(&lb, "SYN", &syn, r));
    set_flags(&mut lb, r, 0, REAL_ACTIVE);
    lb.set_row(1, &[s; MAGLEV_TABLE_SIZE as usize]);

    let before = lb.service_counters(1);
    lb.expect(&Case::drop(
        "default: dropped",
        ack.bytes(),
        DropRealRemoved,
    ));
    lb.expect(&Case::drop("and again", ack.bytes(), DropRealRemoved));
    let flow = lb
        .flow(&ack.flow_key())
        .expect("the entry is left to idle out");
    assert_eq!(flow.real_id, r);
    let counted = delta(lb.service_counters(1), before);
    assert_eq!((counted.packets, counted.drops), (2, 2));

    lb.set_settings(Settings {
        flags: SETTINGS_EXPIRE_NODEST_CONN,
        ..Settings::IPVS_DEFAULTS
    });
    lb.expect(&new_to(&lb, "expire_nodest_conn: rescheduled", &ack, s).counts(FlowRescheduled));
    assert_eq!(lb.flow(&ack.flow_key()).map(|f| f.real_id), Some(s));
}

/// A flow's real that is merely overloaded or drained keeps its flows.
#[test]
fn established_flows_stay_on_overloaded_and_weight_zero_reals() {
    let mut lb = Lb::load();
    let row = three_reals(&mut lb, Scheduler::Maglev, SCHED_FLAG_PORT);
    let syn = syn(&client(0));
    let ack = Packet::tcp_ack(&client(0), WEB);
    let r = MaglevRow(row).predict(&syn.flow_key());
    lb.expect(&new_to(&lb, "SYN", &syn, r));
    set_flags(&mut lb, r, REAL_OVERLOADED, 0);
    lb.expect(&Case::tx("overloaded: the flow stays", &ack, lb.real(r)).counts(FlowHit));
    set_weight(&mut lb, r, 0);
    lb.expect(&Case::tx("weight 0: the flow stays", &ack, lb.real(r)).counts(FlowHit));
    lb.expect(&Case::drop(
        "but a new connection finds no real",
        syn.bytes(),
        DropNoReal,
    ));
}

/// IPv6 clients: persistence masks the /64 as configured.
#[test]
fn ipv6_clients_are_masked_too() {
    pin_to_current_cpu();
    let mut lb = Lb::load();
    let vip6 = "[fd00::10]:80";
    lb.service(vip6, proto::TCP, 1);
    for id in 1..=3 {
        lb.set_real(
            id,
            crate::harness::real(id, 1, ip(&format!("fd00:1::{id}"))),
        );
    }
    lb.set_row(1, &[1, 2, 3]);
    lb.configure_service(vip6, proto::TCP, |service| {
        service.scheduler = Scheduler::RoundRobin as u8;
        service.sched_flags = 0;
        service.row_len = 3;
        service.persistence_timeout = 60;
        service.persistence_prefix = 64;
    });
    let packet = |from: &str| Packet::tcp_syn(from, vip6);
    lb.expect_all(&[
        new_to(&lb, "fd00:c::7", &packet("[fd00:c::7]:40000"), 1),
        new_to(&lb, "fd00:c::8, same /64", &packet("[fd00:c::8]:40000"), 1).counts(PersistenceHit),
        new_to(
            &lb,
            "fd00:c:0:1::7, another /64",
            &packet("[fd00:c:0:1::7]:40000"),
            2,
        ),
    ]);
    let key = PersistKey {
        client: Addr::from("fd00:c::".parse::<IpAddr>().unwrap()),
        service_id: 1,
    };
    assert_eq!(lb.template(&key).map(|t| t.real_id), Some(1));
}
