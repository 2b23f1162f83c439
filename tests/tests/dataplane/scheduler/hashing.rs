//! Hash schedulers (sh, mh, dh) and the fallback that probes further
//! slots.

use lb_common::GlobalCounter::*;
use lb_common::{
    NO_REAL, REAL_OVERLOADED, SCHED_FLAG_FALLBACK, SCHED_FLAG_PORT, Scheduler,
    flow_hash::{MAX_FALLBACK_PROBES, addr_hash, addr_port_hash, probe_slot},
    proto,
};
use lb_tests::frames::Packet;

use super::{
    CLIENT_IP, OTHER_WEB, WEB, WEB_IP,
    services::{at, client_addr},
    services::{client, new_to, service, service_on, set_flags, set_weight, syn, three_reals},
};
use crate::harness::{Case, Lb, MAGLEV_TABLE_SIZE};

/// Two client addresses the row sends to different reals.
fn two_clients_apart(row: &[u32]) -> (String, String) {
    let first = "198.19.7.1".to_owned();
    let first_real = at(row, addr_hash(&client_addr(&first)));
    let second = (2..=254)
        .map(|n| format!("198.19.7.{n}"))
        .find(|other| at(row, addr_hash(&client_addr(other))) != first_real)
        .expect("some address hashes elsewhere");
    (first, second)
}

/// sh and mh without the port flag: every connection of a client goes to
/// the real its address hashes to, whatever its source port; another
/// client may land elsewhere.
#[test]
fn sh_and_mh_without_port_send_each_client_to_one_real() {
    for scheduler in [Scheduler::SourceHash, Scheduler::Maglev] {
        let mut lb = Lb::load();
        let row = three_reals(&mut lb, scheduler, 0);
        let (a, b) = two_clients_apart(&row);
        let mut cases = Vec::new();
        for who in [&a, &b] {
            let expected = at(&row, addr_hash(&client_addr(who)));
            for port in [1_024, 40_000, 40_001, 50_123, 65_000] {
                let from = format!("{who}:{port}");
                cases.push(new_to(
                    &lb,
                    format!("{}: {from} to real {expected}", scheduler.name()),
                    &syn(&from),
                    expected,
                ));
            }
        }
        lb.expect_all(&cases);
    }
}

/// sh-port: the client's port is hashed too, so one client's connections
/// spread over the reals.
#[test]
fn sh_port_spreads_one_client_over_the_reals() {
    let mut lb = Lb::load();
    let row = three_reals(&mut lb, Scheduler::SourceHash, SCHED_FLAG_PORT);
    let mut reals = std::collections::BTreeSet::new();
    let cases: Vec<Case> = (0..12)
        .map(|n| {
            let from = client(n);
            let expected = at(
                &row,
                addr_port_hash(&client_addr(CLIENT_IP), (40_000 + n).to_be()),
            );
            reals.insert(expected);
            new_to(
                &lb,
                format!("{from} to real {expected}"),
                &syn(&from),
                expected,
            )
        })
        .collect();
    assert!(reals.len() > 1, "the ports chosen hash to one real only");
    lb.expect_all(&cases);
}

/// dh: the destination address picks the real; every client of a VIP goes
/// to the same one, each VIP to its own slot. An unavailable real there is
/// no real, fallback flag or not (IPVS's dh has none).
#[test]
fn dh_hashes_the_destination_address() {
    let mut lb = Lb::load();
    let row = three_reals(&mut lb, Scheduler::DestinationHash, 0);
    let other_row: Vec<u32> = (0..MAGLEV_TABLE_SIZE).map(|slot| 4 + slot % 3).collect();
    service_on(
        &mut lb,
        OTHER_WEB,
        2,
        Scheduler::DestinationHash,
        0,
        &[1, 1, 1],
        &other_row,
        4,
    );
    let web_real = at(&row, addr_hash(&client_addr(WEB_IP)));
    let other_real = at(&other_row, addr_hash(&client_addr("198.18.0.20")));
    let mut cases = Vec::new();
    for from in ["198.19.7.7:40000", "198.19.8.9:1234", "198.19.200.1:5555"] {
        cases.push(new_to(
            &lb,
            format!("{from} to {WEB}"),
            &syn(from),
            web_real,
        ));
        let packet = Packet::tcp_syn(from, OTHER_WEB);
        cases.push(new_to(
            &lb,
            format!("{from} to {OTHER_WEB}"),
            &packet,
            other_real,
        ));
    }
    lb.expect_all(&cases);

    set_flags(&mut lb, web_real, REAL_OVERLOADED, 0);
    lb.configure_service(WEB, proto::TCP, |service| {
        service.sched_flags = SCHED_FLAG_FALLBACK
    });
    lb.expect(&Case::drop(
        "dh: overloaded real",
        syn(&client(7)).bytes(),
        DropNoReal,
    ));
}

/// The real the fallback finds: the first probe (1..) whose slot holds an
/// available real, by the contract's probe order.
fn fallback_real(row: &[u32], hash: u32, available: impl Fn(u32) -> bool) -> Option<u32> {
    (1..=MAX_FALLBACK_PROBES)
        .map(|probe| row[probe_slot(hash, probe, MAGLEV_TABLE_SIZE) as usize])
        .find(|&real_id| real_id != NO_REAL && available(real_id))
}

/// mh and sh: an unavailable real in the hashed slot (overloaded, weight
/// 0) drops the connection, unless the service has the fallback flag: then
/// further slots are tried in the contract's probe order. The row holds
/// each real in runs of four (as sh's weighted buckets do), and the client
/// is one for which that order finds another real than the next slot
/// would.
#[test]
fn fallback_probes_further_slots_and_without_it_the_connection_drops() {
    let row: Vec<u32> = (0..MAGLEV_TABLE_SIZE)
        .map(|slot| 1 + (slot / 4) % 3)
        .collect();
    let next_slot_real = |hash: u32, unavailable: u32| {
        (1..MAGLEV_TABLE_SIZE)
            .map(|n| row[((hash + n) % MAGLEV_TABLE_SIZE) as usize])
            .find(|&id| id != unavailable)
    };
    let (client_ip, hash, hashed, found) = (1..=254)
        .map(|n| format!("198.19.7.{n}"))
        .find_map(|who| {
            let hash = addr_hash(&client_addr(&who));
            let hashed = at(&row, hash);
            let found = fallback_real(&row, hash, |id| id != hashed)?;
            (Some(found) != next_slot_real(hash, hashed)).then_some((who, hash, hashed, found))
        })
        .expect("a client whose probes skip past the next slots");
    assert_ne!(found, hashed);
    assert_eq!(
        probe_slot(hash, 0, MAGLEV_TABLE_SIZE),
        hash % MAGLEV_TABLE_SIZE
    );
    for scheduler in [Scheduler::Maglev, Scheduler::SourceHash] {
        let mut lb = Lb::load();
        service(&mut lb, scheduler, 0, &[1, 1, 1], &row);
        let packet = syn(&format!("{client_ip}:40000"));
        let name = scheduler.name();

        lb.expect(&new_to(&lb, format!("{name}: available"), &packet, hashed));
        set_flags(&mut lb, hashed, REAL_OVERLOADED, 0);
        lb.expect(&Case::drop(
            format!("{name}: overloaded, no fallback"),
            packet.bytes(),
            DropNoReal,
        ));

        lb.configure_service(WEB, proto::TCP, |service| {
            service.sched_flags = SCHED_FLAG_FALLBACK
        });
        lb.expect(&new_to(
            &lb,
            format!("{name}: overloaded, fallback"),
            &packet,
            found,
        ));

        // Weight 0 counts as unavailable too; with every real unavailable
        // the probes give up.
        set_flags(&mut lb, hashed, 0, REAL_OVERLOADED);
        set_weight(&mut lb, hashed, 0);
        lb.expect(&new_to(
            &lb,
            format!("{name}: weight 0, fallback"),
            &packet,
            found,
        ));
        for id in 1..=3 {
            set_flags(&mut lb, id, REAL_OVERLOADED, 0);
        }
        lb.expect(&Case::drop(
            format!("{name}: all overloaded"),
            packet.bytes(),
            DropNoReal,
        ));
    }
}
