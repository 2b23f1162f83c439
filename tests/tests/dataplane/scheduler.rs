//! IPVS schedulers, persistence, thresholds and connection counting in the
//! data plane, through the real compiled program (`BPF_PROG_TEST_RUN`,
//! repeat = 1), with the harness of `packet_fixtures.rs`.
//!
//! Every expectation comes from the test itself: the rows and connection
//! counts it writes, the IPVS formulas worked by hand, and the contract's
//! hashes (`lb_common::flow_hash`) for which slot a packet hashes to.
//!
//! Needs root (CAP_BPF, CAP_NET_ADMIN).

use std::net::IpAddr;

use crate::harness::{Case, Lb, MAGLEV_TABLE_SIZE, MaglevRow, delta, pin_to_current_cpu};
use lb_common::{
    Addr, ConnectionState,
    GlobalCounter::*,
    NO_REAL, PersistKey, PersistState, REAL_ACTIVE, REAL_OVERLOADED, RealConns,
    SCHED_FLAG_FALLBACK, SCHED_FLAG_PORT, SETTINGS_EXPIRE_NODEST_CONN, Scheduler, Settings,
    flow_hash::{MAX_FALLBACK_PROBES, addr_hash, addr_port_hash, probe_slot},
    proto,
};
use lb_tests::frames::{Packet, ip};
use lb_userspace::{
    dataplane::monotonic_now_ns,
    reaper,
    rows::{RowReal, build_row},
};

const WEB: &str = "198.18.0.10:80";
const WEB_IP: &str = "198.18.0.10";
const OTHER_WEB: &str = "198.18.0.20:80";
const CLIENT_IP: &str = "198.19.7.7";
const SECOND: u64 = 1_000_000_000;

/// `CLIENT_IP` from source port 40000 + `n`.
fn client(n: u16) -> String {
    format!("{CLIENT_IP}:{}", 40_000 + n)
}

fn syn(client: &str) -> Packet {
    Packet::tcp_syn(client, WEB)
}

/// Service 1 on `WEB` with reals 1..=weights.len() (198.18.1.id, weights
/// as given), `scheduler` with `flags`, and the row `slots` (the first
/// `row_len` of them in use).
fn service(lb: &mut Lb, scheduler: Scheduler, flags: u8, weights: &[u32], slots: &[u32]) {
    service_on(lb, WEB, 1, scheduler, flags, weights, slots, 1);
}

#[allow(clippy::too_many_arguments)]
fn service_on(
    lb: &mut Lb,
    vip: &str,
    service_id: u32,
    scheduler: Scheduler,
    flags: u8,
    weights: &[u32],
    slots: &[u32],
    first_real: u32,
) {
    lb.service(vip, proto::TCP, service_id);
    for (id, &weight) in (first_real..).zip(weights) {
        let mut entry = crate::harness::real(id, service_id, ip(&format!("198.18.1.{id}")));
        entry.weight = weight;
        lb.set_real(id, entry);
    }
    let row_len = if slots.len() == MAGLEV_TABLE_SIZE as usize {
        MAGLEV_TABLE_SIZE
    } else {
        slots.len() as u32
    };
    lb.set_row(service_id, slots);
    lb.configure_service(vip, proto::TCP, |service| {
        service.scheduler = scheduler as u8;
        service.sched_flags = flags;
        service.row_len = row_len;
    });
}

/// Every slot of a 13-slot row: reals 1, 2, 3, 1, 2, 3, ...
fn three_real_row() -> Vec<u32> {
    (0..MAGLEV_TABLE_SIZE).map(|slot| 1 + slot % 3).collect()
}

/// A new connection forwarded to `real_id`.
fn new_to(lb: &Lb, name: impl Into<String>, packet: &Packet, real_id: u32) -> Case {
    Case::tx(name, packet, lb.real(real_id)).counts(FlowNew)
}

fn set_flags(lb: &mut Lb, real_id: u32, set: u8, clear: u8) {
    let mut entry = *lb.real(real_id);
    entry.flags = (entry.flags | set) & !clear;
    lb.set_real(real_id, entry);
}

fn set_weight(lb: &mut Lb, real_id: u32, weight: u32) {
    let mut entry = *lb.real(real_id);
    entry.weight = weight;
    lb.set_real(real_id, entry);
}

fn row_reals(weights: &[u32]) -> Vec<RowReal> {
    (1..)
        .zip(weights)
        .map(|(id, &weight)| RowReal {
            id,
            identity: lb_userspace::reconcile::identity_bytes(ip(&format!("198.18.1.{id}")), 0),
            weight,
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Round robin
// ---------------------------------------------------------------------------

#[test]
fn rr_cycles_through_the_reals_in_order() {
    pin_to_current_cpu();
    let mut lb = Lb::load();
    service(&mut lb, Scheduler::RoundRobin, 0, &[1, 1, 1], &[1, 2, 3]);
    let cases: Vec<Case> = (0..7)
        .map(|n| {
            let expected = 1 + n as u32 % 3;
            new_to(
                &lb,
                format!("connection {n} to real {expected}"),
                &syn(&client(n)),
                expected,
            )
        })
        .collect();
    lb.expect_all(&cases);
}

#[test]
fn wrr_follows_the_ipvs_weighted_sequence() {
    pin_to_current_cpu();
    let mut lb = Lb::load();
    let weights = [4, 3, 2];
    let (row, row_len) = build_row(
        Scheduler::WeightedRoundRobin,
        &row_reals(&weights),
        MAGLEV_TABLE_SIZE,
    )
    .unwrap();
    let sequence = [1, 1, 2, 1, 2, 3, 1, 2, 3];
    assert_eq!(row[..row_len as usize], sequence, "the daemon's wrr row");
    service(
        &mut lb,
        Scheduler::WeightedRoundRobin,
        0,
        &weights,
        &sequence,
    );
    let mut counts = [0; 4];
    let cases: Vec<Case> = (0..18)
        .map(|n| {
            let expected = sequence[n % sequence.len()];
            counts[expected as usize] += 1;
            new_to(
                &lb,
                format!("connection {n} to real {expected}"),
                &syn(&client(n as u16)),
                expected,
            )
        })
        .collect();
    lb.expect_all(&cases);
    assert_eq!(counts[1..], [8, 6, 4], "proportional to the weights");
}

#[test]
fn rr_skips_overloaded_and_weight_zero_reals() {
    pin_to_current_cpu();
    let mut lb = Lb::load();
    service(
        &mut lb,
        Scheduler::RoundRobin,
        0,
        &[1, 1, 1, 1],
        &[1, 2, 3, 4],
    );
    set_flags(&mut lb, 2, REAL_OVERLOADED, 0);
    set_weight(&mut lb, 3, 0);
    let cases: Vec<Case> = [1, 4, 1, 4]
        .into_iter()
        .enumerate()
        .map(|(n, expected)| {
            new_to(
                &lb,
                format!("connection {n}"),
                &syn(&client(n as u16)),
                expected,
            )
        })
        .collect();
    lb.expect_all(&cases);

    // Nobody left: no real.
    set_flags(&mut lb, 1, REAL_OVERLOADED, 0);
    set_weight(&mut lb, 4, 0);
    lb.expect(&Case::drop(
        "every real unavailable",
        syn(&client(9)).bytes(),
        DropNoReal,
    ));
}

// ---------------------------------------------------------------------------
// Hash schedulers
// ---------------------------------------------------------------------------

/// The real a 13-slot `row` holds at `hash`'s slot.
fn at(row: &[u32], hash: u32) -> u32 {
    row[(hash % MAGLEV_TABLE_SIZE) as usize]
}

fn client_addr(text: &str) -> Addr {
    Addr::from(ip(text))
}

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
        let row = three_real_row();
        service(&mut lb, scheduler, 0, &[1, 1, 1], &row);
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
    let row = three_real_row();
    service(
        &mut lb,
        Scheduler::SourceHash,
        SCHED_FLAG_PORT,
        &[1, 1, 1],
        &row,
    );
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
    let row = three_real_row();
    service(&mut lb, Scheduler::DestinationHash, 0, &[1, 1, 1], &row);
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

// ---------------------------------------------------------------------------
// Least-connection family
// ---------------------------------------------------------------------------

/// One SYN to a least-connection service with three reals of `weights` and
/// `conns` (active, inactive) each: it must go to `expected`, and add one
/// inactive connection to it.
fn expect_least(scheduler: Scheduler, weights: [u32; 3], conns: [(u32, u32); 3], expected: u32) {
    let mut lb = Lb::load();
    service(&mut lb, scheduler, 0, &weights, &[1, 2, 3]);
    for (id, (active, inactive)) in (1..).zip(conns) {
        lb.set_real_conns(id, active, inactive);
    }
    let name = format!("{} with {weights:?} {conns:?}", scheduler.name());
    lb.expect(&new_to(&lb, &name, &syn(&client(0)), expected));
    let (active, inactive) = conns[expected as usize - 1];
    assert_eq!(
        lb.real_conns(expected),
        RealConns {
            active,
            inactive: inactive + 1
        },
        "{name}: the new connection is counted"
    );
}

#[test]
fn lc_picks_the_least_active_times_256_plus_inactive() {
    // Overheads 256, 522, 266: real 1, though the weights favour 2.
    expect_least(
        Scheduler::LeastConnection,
        [1, 4, 2],
        [(1, 0), (2, 10), (1, 10)],
        1,
    );
    // 256 + 300 inactive is more than 2 * 256: inactive counts too.
    expect_least(
        Scheduler::LeastConnection,
        [1, 1, 1],
        [(1, 300), (2, 0), (3, 0)],
        2,
    );
    // One active connection weighs as much as 256 inactive ones.
    expect_least(
        Scheduler::LeastConnection,
        [1, 1, 1],
        [(1, 0), (0, 255), (1, 1)],
        2,
    );
    expect_least(
        Scheduler::LeastConnection,
        [1, 1, 1],
        [(1, 0), (0, 257), (1, 1)],
        1,
    );
    // Ties go to the first candidate.
    expect_least(
        Scheduler::LeastConnection,
        [1, 1, 1],
        [(1, 5), (1, 5), (0, 261)],
        1,
    );
}

#[test]
fn wlc_divides_the_overhead_by_the_weight() {
    // 256 / 1, 522 / 4 = 130.5, 266 / 2 = 133: real 2.
    expect_least(
        Scheduler::WeightedLeastConnection,
        [1, 4, 2],
        [(1, 0), (2, 10), (1, 10)],
        2,
    );
    // 256 / 1, 522 / 4 = 130.5, 256 / 2 = 128: real 3.
    expect_least(
        Scheduler::WeightedLeastConnection,
        [1, 4, 2],
        [(1, 0), (2, 10), (1, 0)],
        3,
    );
}

#[test]
fn sed_divides_active_plus_one_by_the_weight() {
    // (1+1)/1, (3+1)/4 = 1, (2+1)/2 = 1.5: real 2; its 1000 inactive
    // connections do not count.
    expect_least(
        Scheduler::ShortestExpectedDelay,
        [1, 4, 2],
        [(1, 0), (3, 1000), (2, 0)],
        2,
    );
    // (0+1)/1 = 1 against (1+1)/4 = 0.5: real 2 despite real 1 being idle.
    expect_least(
        Scheduler::ShortestExpectedDelay,
        [1, 4, 2],
        [(0, 0), (1, 0), (3, 0)],
        2,
    );
}

#[test]
fn nq_takes_the_first_idle_real_else_as_sed() {
    // Real 1 is idle: nq takes it where sed takes real 2 (see above).
    expect_least(
        Scheduler::NeverQueue,
        [1, 4, 2],
        [(0, 0), (1, 0), (3, 0)],
        1,
    );
    // The first idle one, not the best weighted.
    expect_least(
        Scheduler::NeverQueue,
        [1, 1, 4],
        [(1, 0), (0, 50), (0, 0)],
        2,
    );
    // Nobody idle: as sed.
    expect_least(
        Scheduler::NeverQueue,
        [1, 4, 2],
        [(1, 0), (3, 1000), (2, 0)],
        2,
    );
}

#[test]
fn least_connection_skips_overloaded_and_weight_zero_reals() {
    for scheduler in [
        Scheduler::LeastConnection,
        Scheduler::WeightedLeastConnection,
        Scheduler::ShortestExpectedDelay,
        Scheduler::NeverQueue,
    ] {
        let mut lb = Lb::load();
        service(&mut lb, scheduler, 0, &[1, 1, 1], &[1, 2, 3]);
        lb.set_real_conns(1, 0, 0);
        lb.set_real_conns(2, 0, 1);
        lb.set_real_conns(3, 9, 9);
        set_flags(&mut lb, 1, REAL_OVERLOADED, 0);
        set_weight(&mut lb, 2, 0);
        let name = format!("{}: only real 3 is available", scheduler.name());
        lb.expect(&new_to(&lb, name, &syn(&client(0)), 3));
        set_flags(&mut lb, 3, REAL_OVERLOADED, 0);
        let name = format!("{}: none available", scheduler.name());
        lb.expect(&Case::drop(name, syn(&client(1)).bytes(), DropNoReal));
    }
}

// ---------------------------------------------------------------------------
// Connection counts
// ---------------------------------------------------------------------------

/// Every new connection adds one inactive connection to its real, once;
/// packets of known flows add nothing.
#[test]
fn every_new_connection_adds_one_inactive_connection() {
    let mut lb = Lb::load();
    let row = three_real_row();
    service(
        &mut lb,
        Scheduler::Maglev,
        SCHED_FLAG_PORT,
        &[1, 1, 1],
        &row,
    );
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

// ---------------------------------------------------------------------------
// Persistence
// ---------------------------------------------------------------------------

/// An rr service (which would send consecutive connections to different
/// reals) with persistence: `timeout` seconds, `prefix` bits.
fn persistent_service(lb: &mut Lb, timeout: u32, prefix: u8) {
    service(lb, Scheduler::RoundRobin, 0, &[1, 1, 1], &[1, 2, 3]);
    lb.configure_service(WEB, proto::TCP, |service| {
        service.persistence_timeout = timeout;
        service.persistence_prefix = prefix;
    });
}

fn template_key(network: &str) -> PersistKey {
    PersistKey {
        client: Addr::from(ip(network)),
        service_id: 1,
    }
}

#[test]
fn a_persistent_client_returns_to_its_real_by_template() {
    pin_to_current_cpu();
    let mut lb = Lb::load();
    persistent_service(&mut lb, 300, 32);
    let start = monotonic_now_ns();
    lb.expect(&new_to(
        &lb,
        "first connection: rr's first real",
        &syn(&client(0)),
        1,
    ));
    let template = lb.template(&template_key(CLIENT_IP)).expect("a template");
    assert_eq!(template.real_id, 1);
    assert!(template.last_seen_ns >= start);
    lb.expect_all(&[
        new_to(
            &lb,
            "second connection, other port: same real",
            &syn(&client(1)),
            1,
        )
        .counts(PersistenceHit),
        new_to(&lb, "third connection: same real", &syn(&client(2)), 1).counts(PersistenceHit),
    ]);
    // Another client gets rr's next real and a template of its own.
    let other = "198.19.9.9:40000";
    lb.expect(&new_to(&lb, "another client: rr goes on", &syn(other), 2));
    assert_eq!(
        lb.template(&template_key("198.19.9.9")).map(|t| t.real_id),
        Some(2)
    );
    assert_eq!(
        lb.real_conns(1).inactive,
        3,
        "template hits are new connections too"
    );
}

/// ipvsadm's `-M`: clients of one network share a template.
#[test]
fn clients_of_the_masked_network_share_a_template() {
    pin_to_current_cpu();
    let mut lb = Lb::load();
    persistent_service(&mut lb, 300, 24);
    lb.expect_all(&[
        new_to(&lb, "198.19.7.7 opens", &syn("198.19.7.7:40000"), 1),
        new_to(&lb, "198.19.7.99, same /24", &syn("198.19.7.99:1234"), 1).counts(PersistenceHit),
        new_to(&lb, "198.19.8.7, another /24", &syn("198.19.8.7:40000"), 2),
        new_to(
            &lb,
            "198.19.8.200 follows it",
            &syn("198.19.8.200:40000"),
            2,
        )
        .counts(PersistenceHit),
    ]);
    assert_eq!(
        lb.template(&template_key("198.19.7.0")).map(|t| t.real_id),
        Some(1)
    );
    assert_eq!(
        lb.template(&template_key("198.19.8.0")).map(|t| t.real_id),
        Some(2)
    );
    assert_eq!(
        lb.template(&template_key("198.19.7.7")),
        None,
        "keys are masked"
    );
}

#[test]
fn an_expired_template_is_replaced_by_a_fresh_choice() {
    pin_to_current_cpu();
    let mut lb = Lb::load();
    persistent_service(&mut lb, 300, 32);
    let stale = PersistState {
        real_id: 3,
        _pad: 0,
        last_seen_ns: monotonic_now_ns() - 301 * SECOND,
    };
    lb.set_template(template_key(CLIENT_IP), stale);
    lb.expect(&new_to(
        &lb,
        "past the timeout: rr decides",
        &syn(&client(0)),
        1,
    ));
    let template = lb.template(&template_key(CLIENT_IP)).unwrap();
    assert_eq!(template.real_id, 1);
    assert!(template.last_seen_ns > stale.last_seen_ns);

    // Just within the timeout, it holds.
    let recent = PersistState {
        last_seen_ns: monotonic_now_ns() - 290 * SECOND,
        ..stale
    };
    lb.set_template(template_key(CLIENT_IP), recent);
    lb.expect(&new_to(&lb, "within the timeout", &syn(&client(1)), 3).counts(PersistenceHit));
}

/// IPVS's default (expire_quiescent_template off): a template keeps its
/// client on a real drained to weight 0, or overloaded; only the real's
/// removal ends it.
#[test]
fn a_template_outlasts_weight_zero_and_overload_but_not_removal() {
    pin_to_current_cpu();
    let mut lb = Lb::load();
    persistent_service(&mut lb, 300, 32);
    lb.expect(&new_to(&lb, "first connection", &syn(&client(0)), 1));
    set_weight(&mut lb, 1, 0);
    lb.expect(&new_to(&lb, "weight 0", &syn(&client(1)), 1).counts(PersistenceHit));
    set_flags(&mut lb, 1, REAL_OVERLOADED, 0);
    lb.expect(&new_to(&lb, "overloaded too", &syn(&client(2)), 1).counts(PersistenceHit));
    set_flags(&mut lb, 1, 0, REAL_ACTIVE);
    lb.expect(&new_to(&lb, "removed: rescheduled", &syn(&client(3)), 2));
    assert_eq!(
        lb.template(&template_key(CLIENT_IP)).map(|t| t.real_id),
        Some(2)
    );
}

/// The flow table refreshes a persistent flow's template along with the
/// flow (at most once a second), so it outlives the last connection by the
/// timeout; a template pointing elsewhere is left alone.
#[test]
fn established_flows_refresh_their_template() {
    pin_to_current_cpu();
    let mut lb = Lb::load();
    persistent_service(&mut lb, 300, 32);
    let syn = syn(&client(0));
    let ack = Packet::tcp_ack(&client(0), WEB);
    lb.expect(&new_to(&lb, "SYN", &syn, 1));
    lb.expect(&Case::tx("ACK establishes", &ack, lb.real(1)).counts(FlowHit));
    let age = |lb: &mut Lb, template_age: u64, real_id: u32| {
        let now = monotonic_now_ns();
        lb.set_template(
            template_key(CLIENT_IP),
            PersistState {
                real_id,
                _pad: 0,
                last_seen_ns: now - template_age * SECOND,
            },
        );
        let mut flow = lb.flow(&ack.flow_key()).unwrap();
        flow.last_seen_ns = now - 2 * SECOND;
        lb.set_flow(ack.flow_key(), flow);
        now
    };

    let then = age(&mut lb, 200, 1);
    lb.expect(&Case::tx("ACK after 2 s", &ack, lb.real(1)).counts(FlowHit));
    let template = lb.template(&template_key(CLIENT_IP)).unwrap();
    assert!(template.last_seen_ns >= then, "refreshed");

    // Within the second: the flow is not written, nor is the template.
    let template_before = lb.template(&template_key(CLIENT_IP)).unwrap();
    lb.expect(&Case::tx("ACK right after", &ack, lb.real(1)).counts(FlowHit));
    assert_eq!(lb.template(&template_key(CLIENT_IP)), Some(template_before));

    let then = age(&mut lb, 200, 2);
    lb.expect(&Case::tx("ACK, template elsewhere", &ack, lb.real(1)).counts(FlowHit));
    let template = lb.template(&template_key(CLIENT_IP)).unwrap();
    assert_eq!(template.real_id, 2);
    assert!(template.last_seen_ns < then, "left alone");

    // Gone (reaped or evicted): the flow writes it again.
    lb.maps_mut()
        .persist
        .remove(&template_key(CLIENT_IP))
        .unwrap();
    age_flow_only(&mut lb, &ack);
    lb.expect(&Case::tx("ACK, template gone", &ack, lb.real(1)).counts(FlowHit));
    assert_eq!(
        lb.template(&template_key(CLIENT_IP)).map(|t| t.real_id),
        Some(1)
    );
}

fn age_flow_only(lb: &mut Lb, packet: &Packet) {
    let mut flow = lb.flow(&packet.flow_key()).unwrap();
    flow.last_seen_ns = monotonic_now_ns() - 2 * SECOND;
    lb.set_flow(packet.flow_key(), flow);
}

/// The data plane's clock is coarse (a tick behind the precise one), and a
/// timestamp the daemon or another CPU wrote can be ahead of it: such a flow
/// is fresh, not idle for centuries. One idle past its timeout is
/// scheduled again.
#[test]
fn flows_expire_by_idle_time_and_a_timestamp_ahead_is_fresh() {
    pin_to_current_cpu();
    let mut lb = Lb::load();
    let row = three_real_row();
    service(&mut lb, Scheduler::Maglev, 0, &[1, 1, 1], &row);
    let real = at(&row, addr_hash(&client_addr(CLIENT_IP)));
    let syn = syn(&client(0));
    let ack = Packet::tcp_ack(&client(0), WEB);
    lb.expect(&new_to(&lb, "SYN", &syn, real));
    let set_last_seen = |lb: &mut Lb, last_seen_ns: u64| {
        let mut flow = lb.flow(&ack.flow_key()).expect("the flow");
        flow.last_seen_ns = last_seen_ns;
        lb.set_flow(ack.flow_key(), flow);
    };

    set_last_seen(&mut lb, monotonic_now_ns() + SECOND);
    lb.expect(&Case::tx("ACK, timestamp ahead", &ack, lb.real(real)).counts(FlowHit));

    // Established: IPVS's 900 s of idle time expire it.
    set_last_seen(&mut lb, monotonic_now_ns() - 901 * SECOND);
    lb.expect(&new_to(&lb, "ACK after 901 s idle", &ack, real).counts(FlowExpired));
    let flow = lb.flow(&ack.flow_key()).expect("scheduled again");
    assert!(
        flow.last_seen_ns + SECOND > monotonic_now_ns(),
        "fresh again"
    );
}

#[test]
fn the_reaper_removes_expired_templates() {
    let mut lb = Lb::load();
    persistent_service(&mut lb, 300, 32);
    service_on(
        &mut lb,
        OTHER_WEB,
        2,
        Scheduler::RoundRobin,
        0,
        &[1],
        &[4],
        4,
    );
    let now = monotonic_now_ns();
    let template = |real_id, age: u64| PersistState {
        real_id,
        _pad: 0,
        last_seen_ns: now - age * SECOND,
    };
    let key = |client: &str, service_id| PersistKey {
        client: Addr::from(ip(client)),
        service_id,
    };
    lb.set_template(key("198.19.7.1", 1), template(1, 10));
    lb.set_template(key("198.19.7.2", 1), template(2, 301));
    // Service 2 is not persistent, and service 3 does not exist.
    lb.set_template(key("198.19.7.3", 2), template(4, 10));
    lb.set_template(key("198.19.7.4", 3), template(5, 10));
    let reaped = reaper::reap(lb.maps_mut(), &Settings::IPVS_DEFAULTS, now).unwrap();
    assert_eq!(reaped.templates, 3);
    assert!(lb.template(&key("198.19.7.1", 1)).is_some());
    for (client, service_id) in [("198.19.7.2", 1), ("198.19.7.3", 2), ("198.19.7.4", 3)] {
        assert_eq!(lb.template(&key(client, service_id)), None, "{client}");
    }
}

// ---------------------------------------------------------------------------
// Flows whose real is gone
// ---------------------------------------------------------------------------

#[test]
fn a_flow_whose_real_was_removed_is_dropped_unless_expire_nodest_conn() {
    let mut lb = Lb::load();
    let row = three_real_row();
    service(
        &mut lb,
        Scheduler::Maglev,
        SCHED_FLAG_PORT,
        &[1, 1, 1],
        &row,
    );
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
    let row = three_real_row();
    service(
        &mut lb,
        Scheduler::Maglev,
        SCHED_FLAG_PORT,
        &[1, 1, 1],
        &row,
    );
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
