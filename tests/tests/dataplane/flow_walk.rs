//! Walking the connection table against a real kernel map: what the daemon
//! counts every second and reaps every five. Needs root (loads the data
//! plane's maps into this process, unpinned).

use std::collections::HashMap;

use lb_common::{Addr, ConnectionState, FlowKey, FlowState, REAL_ACTIVE, Real};
use lb_tests::require_root;
use lb_userspace::{
    dataplane::{Dataplane, Geometry, batch, monotonic_now_ns},
    reaper,
};

use crate::harness::MAGLEV_TABLE_SIZE;

fn load(flow_table_entries: u32) -> Dataplane {
    let geometry = Geometry {
        maglev_table_size: MAGLEV_TABLE_SIZE,
        flow_table_entries,
        ..Geometry::default()
    };
    Dataplane::load(geometry, None).expect("loading the data plane (needs root / CAP_BPF)")
}

/// The `index`th of a set of distinct IPv4 TCP flows to one VIP.
fn flow_key(index: u32) -> FlowKey {
    let client = 0xc612_0000 | (index >> 16); // 198.18.x.x
    FlowKey {
        src: Addr::from_v4_octets(client.to_be_bytes()),
        dst: Addr::from_v4_octets([198, 19, 0, 10]),
        src_port: (index as u16).to_be(),
        dst_port: 80u16.to_be(),
        protocol: 6,
        family: 4,
        _pad: [0; 2],
    }
}

/// An established flow of real 1 (service 1), seen just now.
fn live_flow(now_ns: u64) -> FlowState {
    FlowState {
        real_id: 1,
        service_id: 1,
        last_seen_ns: now_ns,
        state: ConnectionState::TcpEstablished as u8,
        ..FlowState::default()
    }
}

/// Writes `count` distinct live flows of real 1, which is configured in
/// service 1, so every flow counts.
fn fill(dataplane: &mut Dataplane, count: u32, now_ns: u64) {
    let maps = &mut dataplane.maps;
    let real = Real {
        flags: REAL_ACTIVE,
        service_id: 1,
        ..Real::default()
    };
    maps.reals.set(1, real, 0).expect("writing real 1");
    for index in 0..count {
        maps.flows
            .insert(flow_key(index), live_flow(now_ns), 0)
            .expect("inserting a flow");
    }
}

/// Room for the walk tests' flows without the LRU evicting any.
const SMALL_FLOW_TABLE_ENTRIES: u32 = 1 << 16;

/// The table as a batch walk of it sees it, checking that no key comes
/// twice.
fn walk(dataplane: &Dataplane, batch_entries: usize) -> HashMap<FlowKey, FlowState> {
    let mut seen = HashMap::new();
    for entry in batch::entries_in_batches_of(&dataplane.maps.flows, batch_entries) {
        let (key, flow) = entry.expect("a batch lookup");
        assert!(seen.insert(key, flow).is_none(), "{key:?} walked twice");
    }
    seen
}

#[test]
fn a_batch_walk_returns_every_flow_exactly_once() {
    if !require_root("a_batch_walk_returns_every_flow_exactly_once") {
        return;
    }
    // More than two batches of the default size, and not a multiple of it:
    // the last batch is partial.
    const FLOWS: u32 = 10_000;
    const _: () = assert!(!(FLOWS as usize).is_multiple_of(batch::DEFAULT_BATCH_ENTRIES));
    let mut dataplane = load(SMALL_FLOW_TABLE_ENTRIES);
    let now_ns = monotonic_now_ns();
    fill(&mut dataplane, FLOWS, now_ns);
    let expected: HashMap<FlowKey, FlowState> = (0..FLOWS)
        .map(|index| (flow_key(index), live_flow(now_ns)))
        .collect();
    assert_eq!(walk(&dataplane, batch::DEFAULT_BATCH_ENTRIES), expected);
    assert_eq!(walk(&dataplane, 1_000), expected, "batches of 1,000");
    // One entry per batch: any bucket holding two makes the kernel answer
    // ENOSPC, and the walk must grow its buffers rather than fail.
    assert_eq!(walk(&dataplane, 1), expected, "batches of one");
}

#[test]
fn a_batch_walk_of_an_empty_table_returns_nothing() {
    if !require_root("a_batch_walk_of_an_empty_table_returns_nothing") {
        return;
    }
    let dataplane = load(SMALL_FLOW_TABLE_ENTRIES);
    assert_eq!(
        walk(&dataplane, batch::DEFAULT_BATCH_ENTRIES),
        HashMap::new()
    );
}

#[test]
fn counting_and_reaping_walk_the_whole_table() {
    if !require_root("counting_and_reaping_walk_the_whole_table") {
        return;
    }
    const FLOWS: u32 = 10_000;
    let mut dataplane = load(SMALL_FLOW_TABLE_ENTRIES);
    let settings = lb_common::Settings::IPVS_DEFAULTS;
    let now_ns = monotonic_now_ns();
    fill(&mut dataplane, FLOWS, now_ns);
    let counts = reaper::count_connections(&dataplane.maps, &settings, now_ns);
    assert_eq!(counts[&1].active, FLOWS);
    // Past the established timeout every flow is reaped, and none is left.
    let later_ns = now_ns + (u64::from(settings.tcp) + 1) * 1_000_000_000;
    let reaped = reaper::reap(&mut dataplane.maps, &settings, later_ns).expect("reaping");
    assert_eq!(reaped.flows, FLOWS as usize);
    assert_eq!(walk(&dataplane, batch::DEFAULT_BATCH_ENTRIES).len(), 0);
}
