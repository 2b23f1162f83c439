//! Batch updates land on the entries they name, with the kernel's layout
//! of array and per-CPU values. Needs root (CAP_BPF); `cargo xtask test`
//! runs it as such.

use aya::maps::PerCpuValues;
use lb_common::{Real, TrafficCounters};
use lb_userspace::dataplane::{Dataplane, Geometry, batch};

fn load() -> Dataplane {
    let geometry = Geometry {
        maglev_table_size: 251,
        flow_table_entries: 1024,
        max_services: 10,
        max_reals: 100,
    };
    Dataplane::load(geometry, None).expect("loading (needs root)")
}

#[test]
fn set_all_writes_each_value_at_its_index() {
    let mut dataplane = load();
    let reals = &mut dataplane.maps.reals;
    let indices = [3, 1, 100];
    let values: Vec<Real> = indices
        .iter()
        .map(|&id| Real {
            service_id: id * 10,
            weight: id + 7,
            mtu: 1400,
            ..Real::default()
        })
        .collect();
    batch::set_all(reals, &indices, &values).unwrap();
    for id in 0..=100 {
        let expected = indices
            .iter()
            .position(|&index| index == id)
            .map_or_else(Real::default, |at| values[at]);
        assert_eq!(reals.get(&id, 0).unwrap(), expected, "entry {id}");
    }
}

#[test]
fn zero_all_clears_every_cpu_of_just_those_entries() {
    let mut dataplane = load();
    let stats = &mut dataplane.maps.real_stats;
    let cpus = aya::util::nr_cpus().unwrap();
    let busy = TrafficCounters {
        packets: 1,
        bytes: 2,
        new_connections: 3,
        drops: 4,
        out_packets: 5,
        out_bytes: 6,
    };
    for id in [4, 5, 6] {
        let values = PerCpuValues::try_from(vec![busy; cpus]).unwrap();
        stats.set(id, values, 0).unwrap();
    }
    batch::zero_all(stats, &[4, 6]).unwrap();
    for (id, expected) in [
        (4, TrafficCounters::default()),
        (5, busy),
        (6, TrafficCounters::default()),
    ] {
        let values = stats.get(&id, 0).unwrap();
        assert!(values.iter().all(|value| *value == expected), "entry {id}");
    }
}
