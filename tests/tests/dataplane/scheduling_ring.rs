//! The scheduling ring's row access lands on the slots the data plane and
//! the `bpf()` syscalls see, through the mapping and through the batch
//! fallback, and a restarted daemon finds its rows there. Also what a
//! reload writes besides rows: the flood guard's limit.
//! Needs root (CAP_BPF, bpffs); `cargo xtask test` runs it as such.

use std::{
    collections::HashMap,
    io,
    mem::size_of,
    net::IpAddr,
    os::fd::{FromRawFd as _, OwnedFd},
};

use aya::maps::{Array, Map, MapData};
use lb_common::NO_REAL;
use lb_userspace::{
    config::{
        self,
        identity::{real_addresses, service_key},
    },
    dataplane::{
        self, Dataplane, Geometry, PinLayout,
        ring::{Access, Ring},
    },
    health::{admission::Mark, tracker::RealKey},
    neighbours::{NextHop, Resolution},
    reconcile::Reconciler,
};

/// Prime, and a row of it (8 bytes a slot) is not a whole number of pages:
/// rows start and end mid-page.
const TABLE_SIZE: u32 = 251;
const MAX_SERVICES: u32 = 20;

fn geometry() -> Geometry {
    Geometry {
        maglev_table_size: TABLE_SIZE,
        flow_table_entries: 1024,
        max_services: MAX_SERVICES,
        max_reals: 100,
    }
}

/// A row whose every slot says which row and slot it is.
fn marked_row(id: u32) -> Vec<u32> {
    (0..TABLE_SIZE).map(|slot| id * 1_000 + slot + 1).collect()
}

/// Writes rows through `ring` and reads them back with one lookup syscall
/// per slot, and the other way round; rows not written stay empty.
fn check_round_trip(array: &mut Array<MapData, u32>) {
    let written = [1, 2, MAX_SERVICES];
    {
        let ring = Ring::new(array, TABLE_SIZE).unwrap();
        for id in written {
            assert_eq!(
                ring.write_row(id, &marked_row(id)).unwrap(),
                TABLE_SIZE as usize
            );
            assert_eq!(ring.write_row(id, &marked_row(id)).unwrap(), 0);
        }
    }
    for id in 0..=MAX_SERVICES {
        let expected = if written.contains(&id) {
            marked_row(id)
        } else {
            vec![NO_REAL; TABLE_SIZE as usize]
        };
        let by_syscall: Vec<u32> = (0..TABLE_SIZE)
            .map(|slot| array.get(&(id * TABLE_SIZE + slot), 0).unwrap())
            .collect();
        assert_eq!(by_syscall, expected, "row {id}");
    }
    array.set(3 * TABLE_SIZE + 7, 42, 0).unwrap();
    let ring = Ring::new(array, TABLE_SIZE).unwrap();
    let row = ring.read_row(3).unwrap();
    assert_eq!(row[7], 42);
    assert_eq!(row.iter().filter(|&&id| id != NO_REAL).count(), 1);
    assert_eq!(
        ring.read_row(MAX_SERVICES).unwrap(),
        marked_row(MAX_SERVICES)
    );
    assert!(ring.read_row(MAX_SERVICES + 1).is_err(), "past the ring");
}

#[test]
fn mapped_rows_are_the_slots_the_syscalls_see() {
    let mut dataplane = Dataplane::load(geometry(), None).expect("loading (needs root)");
    let ring = Ring::new(&dataplane.maps.maglev, TABLE_SIZE).unwrap();
    assert_eq!(ring.access(), Access::Mapped, "LB_MAGLEV is mmapable");
    check_round_trip(&mut dataplane.maps.maglev);
}

#[test]
fn a_ring_without_the_mmap_flag_is_written_in_batches() {
    let mut array = plain_array((MAX_SERVICES + 1) * TABLE_SIZE).expect("BPF_MAP_CREATE");
    let ring = Ring::new(&array, TABLE_SIZE).unwrap();
    assert_eq!(ring.access(), Access::Batched);
    check_round_trip(&mut array);
}

/// An array of `u32`s created the way an lbd from before `BPF_F_MMAPABLE`
/// created the ring.
fn plain_array(entries: u32) -> io::Result<Array<MapData, u32>> {
    /// The `map_create` member of `union bpf_attr`, up to `map_flags`.
    #[repr(C)]
    struct MapCreateAttr {
        map_type: u32,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        map_flags: u32,
    }
    const BPF_MAP_CREATE: libc::c_long = 0;
    const BPF_MAP_TYPE_ARRAY: u32 = 2;
    let attr = MapCreateAttr {
        map_type: BPF_MAP_TYPE_ARRAY,
        key_size: 4,
        value_size: 4,
        max_entries: entries,
        map_flags: 0,
    };
    // SAFETY: a valid prefix of `bpf_attr` (the kernel zero-fills the rest
    // of what it knows), passed with its exact size; the kernel only reads it.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_CREATE,
            &attr as *const MapCreateAttr,
            size_of::<MapCreateAttr>() as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just handed us this new fd; nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let map = Map::Array(MapData::from_fd(fd).map_err(io::Error::other)?);
    map.try_into().map_err(io::Error::other)
}

#[test]
fn a_restarted_daemon_adopts_the_rows_and_rewrites_none() {
    let pins = Pins::new(format!("/sys/fs/bpf/lb-test-ring-{}", std::process::id()));
    let layout = &pins.0;
    let config = config::parse(&config_yaml(layout, 3), "ring.yaml", &|_| true).unwrap();
    let hops = next_hops(&config);
    let none = HashMap::new();

    let first_rows = {
        let mut dataplane = Dataplane::load(geometry(), Some(layout)).unwrap();
        assert!(!dataplane.adopted);
        let mut reconciler = Reconciler::new(geometry());
        let applied = reconciler
            .apply(&mut dataplane.maps, &config, &hops, &none)
            .unwrap();
        assert_eq!(applied.maglev_slots_written, 2 * TABLE_SIZE as usize);
        assert_eq!(applied.rows_built, 2);
        // The same plan again: nothing to build, nothing to write.
        let again = reconciler
            .apply(&mut dataplane.maps, &config, &hops, &none)
            .unwrap();
        assert_eq!((again.rows_built, again.maglev_slots_written), (0, 0));
        rows_by_syscall(&dataplane.maps.maglev, 2)
    };
    assert!(first_rows.iter().flatten().all(|&id| id != NO_REAL));

    let mut dataplane = Dataplane::load(geometry(), Some(layout)).unwrap();
    assert!(dataplane.adopted);
    let mut reconciler = Reconciler::adopt(geometry(), &dataplane.maps).unwrap();
    let applied = reconciler
        .apply(&mut dataplane.maps, &config, &hops, &none)
        .unwrap();
    assert_eq!(applied.maglev_slots_written, 0, "the rows were adopted");
    assert_eq!(
        applied.rows_built, 2,
        "nothing says what adopted rows were built from"
    );
    assert_eq!(rows_by_syscall(&dataplane.maps.maglev, 2), first_rows);

    // One real fewer in each service: its slots go to the others.
    let fewer = config::parse(&config_yaml(layout, 2), "ring.yaml", &|_| true).unwrap();
    let applied = reconciler
        .apply(&mut dataplane.maps, &fewer, &hops, &none)
        .unwrap();
    assert!(applied.maglev_slots_written > 0);
    assert_eq!(applied.rows_built, 2);

    // Health checking takes one real of service a out: only a's row is
    // built again.
    let service_a = &fewer.services[0];
    let marks = HashMap::from([(
        RealKey::new(service_key(service_a), &service_a.reals[0]),
        Mark {
            removed: true,
            ..Mark::default()
        },
    )]);
    let applied = reconciler
        .apply(&mut dataplane.maps, &fewer, &hops, &marks)
        .unwrap();
    assert_eq!(applied.rows_built, 1);
    assert!(applied.maglev_slots_written > 0);
    let applied = reconciler
        .apply(&mut dataplane.maps, &fewer, &hops, &none)
        .unwrap();
    assert_eq!(applied.rows_built, 1, "back in");
    let current: Vec<u32> = reconciler.ids().reals.values().copied().collect();
    assert_eq!(current.len(), 4);
    for row in rows_by_syscall(&dataplane.maps.maglev, 2) {
        assert!(
            row.iter().all(|id| current.contains(id)),
            "only current reals"
        );
    }
}

#[test]
fn the_flood_guard_limit_follows_the_config() {
    let mut dataplane = Dataplane::load(geometry(), None).expect("loading (needs root)");
    let mut reconciler = Reconciler::new(geometry());
    let layout = PinLayout::new("/sys/fs/bpf/unused");
    let limit = |dataplane: &Dataplane| {
        let guard = dataplane.maps.flood_guard.get(&0, 0).unwrap();
        guard.new_flows_per_second
    };
    for (line, expected) in [
        ("", config::DEFAULT_FLOOD_GUARD_NEW_FLOWS),
        ("flood_guard: { new_flows_per_second: 0 }\n", 0),
        ("flood_guard: { new_flows_per_second: 7 }\n", 7),
    ] {
        let yaml = format!("{line}{}", config_yaml(&layout, 1));
        apply_yaml(&mut reconciler, &mut dataplane, &yaml);
        assert_eq!(limit(&dataplane), expected, "after applying {line:?}");
    }
}

/// A pin directory of the test's own, removed however the test ends.
struct Pins(PinLayout);

impl Pins {
    fn new(root: String) -> Self {
        let layout = PinLayout::new(root);
        let _ = dataplane::teardown(&layout);
        Self(layout)
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        let _ = dataplane::teardown(&self.0);
    }
}

/// Rows `1..=services` read one lookup syscall per slot.
fn rows_by_syscall(array: &Array<MapData, u32>, services: u32) -> Vec<Vec<u32>> {
    (1..=services)
        .map(|id| {
            (0..TABLE_SIZE)
                .map(|slot| array.get(&(id * TABLE_SIZE + slot), 0).unwrap())
                .collect()
        })
        .collect()
}

/// Two services with `reals` reals each.
fn config_yaml(layout: &PinLayout, reals: usize) -> String {
    let mut yaml = format!(
        "pin_path: {}\n\
         interfaces: [{{ name: eth0 }}]\n\
         dataplane: {{ maglev_table_size: {TABLE_SIZE}, flow_table_entries: 1024, \
         max_services: {MAX_SERVICES}, max_reals: 100 }}\n\
         services:\n",
        layout.root.display()
    );
    for (name, vip) in [("a", "198.18.1.10"), ("b", "198.18.1.11")] {
        yaml += &format!("  - {{ name: {name}, vip: {vip}, port: 80, protocol: tcp, reals: [\n");
        for i in 1..=reals {
            yaml += &format!("      {{ address: 198.18.2.{i} }},\n");
        }
        yaml += "    ] }\n";
    }
    yaml
}

/// A directly connected next hop for every real.
fn next_hops(config: &config::Config) -> HashMap<IpAddr, Resolution> {
    real_addresses(config)
        .into_iter()
        .map(|address| {
            let hop = NextHop {
                ifindex: 1,
                dst_mac: [2, 0, 0, 0, 0, 1],
                src_mac: [2, 0, 0, 0, 0, 2],
                gateway: None,
                mtu: 1500,
                source: None,
            };
            (address, Ok(hop))
        })
        .collect()
}

/// The NAT reply cache reads no real entry, so a NAT real that leaves
/// (its address no longer one replies are taken from) must empty every
/// CPU's caches: the flow cache generation moves then, and not when
/// nothing changed.
#[test]
fn nat_reals_leaving_empty_the_caches() {
    let mut dataplane = Dataplane::load(geometry(), None).expect("loading (needs root)");
    let mut reconciler = Reconciler::new(geometry());
    let layout = PinLayout::new("/sys/fs/bpf/unused");
    let mut apply = |reals: usize| {
        let yaml = config_yaml(&layout, reals)
            .replace("protocol: tcp,", "protocol: tcp, forwarding: nat,");
        apply_yaml(&mut reconciler, &mut dataplane, &yaml);
        dataplane.maps.flow_cache_generation.get(&0, 0).unwrap()
    };
    let first = apply(3);
    assert_eq!(apply(3), first, "nothing changed");
    assert_ne!(apply(2), first, "a NAT real left");
}

/// Parses `yaml` and applies it with every real's next hop known and no
/// health verdicts.
fn apply_yaml(reconciler: &mut Reconciler, dataplane: &mut Dataplane, yaml: &str) {
    let config = config::parse(yaml, "test.yaml", &|_| true).unwrap();
    reconciler
        .apply(
            &mut dataplane.maps,
            &config,
            &next_hops(&config),
            &HashMap::new(),
        )
        .unwrap();
}
