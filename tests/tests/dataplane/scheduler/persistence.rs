//! Persistence templates: returning clients, masks, expiry, refresh and
//! reaping.

use lb_common::GlobalCounter::*;
use lb_common::{
    Addr, PersistKey, PersistState, REAL_ACTIVE, REAL_OVERLOADED, Scheduler, Settings,
    flow_hash::addr_hash, proto,
};
use lb_tests::frames::{Packet, ip};
use lb_userspace::{dataplane::monotonic_now_ns, reaper};

use super::{
    CLIENT_IP, OTHER_WEB, SECOND, WEB,
    services::{at, client_addr},
    services::{client, new_to, service, service_on, set_flags, set_weight, syn, three_reals},
};
use crate::harness::{Case, Lb, pin_to_current_cpu};

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
    let row = three_reals(&mut lb, Scheduler::Maglev, 0);
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
