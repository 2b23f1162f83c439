//! Next hops for many reals at once: route lookups spread over several
//! netlink sockets (one thread each) must come back as if asked one by one.
//! Needs root (a network namespace); under CI it must run, never skip.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use anyhow::{Context as _, Result, ensure};
use lb_tests::{
    netns::{self, Netns, unique_prefix},
    require_root,
};
use lb_userspace::neighbours::{NextHop, Resolver, Unresolved};

const GATEWAY_A: &str = "198.18.0.2";
const GATEWAY_B: &str = "198.18.1.2";
const GATEWAY_A6: &str = "fd00:a::2";
const GATEWAY_B6: &str = "fd00:b::2";
const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
/// The balancer's own interfaces: the source MAC of frames through them.
const MAC_ETH0: [u8; 6] = [0x02, 0, 0, 0, 0, 0xe0];
const MAC_ETH1: [u8; 6] = [0x02, 0, 0, 0, 0, 0xe1];

fn mac_text(mac: [u8; 6]) -> String {
    mac.map(|byte| format!("{byte:02x}")).join(":")
}

/// The balancer's side: eth0 towards gateway A, eth1 towards gateway B,
/// both families, static neighbour entries for the gateways and for a few
/// directly connected reals, no default route.
fn balancer(prefix: &str) -> Result<(Netns, Netns, Netns)> {
    let balancer = Netns::create(&format!("{prefix}-lb"))?;
    let side_a = Netns::create(&format!("{prefix}-a"))?;
    let side_b = Netns::create(&format!("{prefix}-b"))?;
    netns::veth_pair(&balancer, "eth0", &side_a, "eth0")?;
    netns::veth_pair(&balancer, "eth1", &side_b, "eth0")?;
    for (device, mac, v4, v6) in [
        ("eth0", MAC_ETH0, "198.18.0.1/24", "fd00:a::1/64"),
        ("eth1", MAC_ETH1, "198.18.1.1/24", "fd00:b::1/64"),
    ] {
        balancer.ip(&["link", "set", device, "address", &mac_text(mac)])?;
        balancer.ip(&["addr", "add", v4, "dev", device])?;
        balancer.ip(&["addr", "add", v6, "dev", device, "nodad"])?;
        balancer.ip(&["link", "set", device, "up"])?;
    }
    for namespace in [&side_a, &side_b] {
        namespace.ip(&["link", "set", "eth0", "up"])?;
    }
    for (range, gateway) in [
        ("198.19.0.0/17", GATEWAY_A),
        ("198.19.128.0/17", GATEWAY_B),
        ("fd00:1000::/32", GATEWAY_A6),
        ("fd00:2000::/32", GATEWAY_B6),
    ] {
        balancer.ip(&["route", "add", range, "via", gateway])?;
    }
    let permanent = |address: &str, mac: [u8; 6], device: &str| {
        balancer.ip(&[
            "neigh",
            "replace",
            address,
            "lladdr",
            &mac_text(mac),
            "dev",
            device,
            "nud",
            "permanent",
        ])
    };
    permanent(GATEWAY_A, MAC_A, "eth0")?;
    permanent(GATEWAY_B, MAC_B, "eth1")?;
    permanent(GATEWAY_A6, MAC_A, "eth0")?;
    permanent(GATEWAY_B6, MAC_B, "eth1")?;
    for host in 50..60u8 {
        permanent(
            &format!("198.18.0.{host}"),
            [0x02, 0, 0, 0, 1, host],
            "eth0",
        )?;
    }
    Ok((balancer, side_a, side_b))
}

/// What each real should resolve to: (interface, gateway, MAC), or no route.
type Expected = Result<(&'static str, Option<IpAddr>, [u8; 6]), Unresolved>;

fn reals() -> Vec<(IpAddr, Expected)> {
    let gateway = |text: &str| Some(text.parse::<IpAddr>().expect("a gateway address"));
    let mut reals = Vec::new();
    for i in 0..4_000u32 {
        let via_a = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 19, 0, 0)) + i);
        let via_b = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 19, 128, 0)) + i);
        reals.push((via_a.into(), Ok(("eth0", gateway(GATEWAY_A), MAC_A))));
        reals.push((via_b.into(), Ok(("eth1", gateway(GATEWAY_B), MAC_B))));
    }
    for i in 0..2_000u16 {
        let via_a = Ipv6Addr::new(0xfd00, 0x1000, 0, 0, 0, 0, 0, i + 1);
        let via_b = Ipv6Addr::new(0xfd00, 0x2000, 0, 0, 0, 0, 7, i + 1);
        reals.push((via_a.into(), Ok(("eth0", gateway(GATEWAY_A6), MAC_A))));
        reals.push((via_b.into(), Ok(("eth1", gateway(GATEWAY_B6), MAC_B))));
    }
    for host in 50..60u8 {
        let connected = Ipv4Addr::new(198, 18, 0, host);
        reals.push((
            connected.into(),
            Ok(("eth0", None, [0x02, 0, 0, 0, 1, host])),
        ));
    }
    for host in 1..=10u8 {
        let unrouted = Ipv4Addr::new(198, 18, 200, host);
        reals.push((unrouted.into(), Err(Unresolved::NoRoute)));
        let unrouted6 = Ipv6Addr::new(0xfd00, 0xffff, 0, 0, 0, 0, 0, u16::from(host));
        reals.push((unrouted6.into(), Err(Unresolved::NoRoute)));
    }
    reals
}

fn ifindex(name: &str) -> Result<u32> {
    let name = std::ffi::CString::new(name)?;
    // SAFETY: a NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    ensure!(index != 0, "no interface {name:?}");
    Ok(index)
}

#[test]
fn twelve_thousand_reals_looked_up_on_three_sockets_resolve_as_routed() -> Result<()> {
    if !require_root("twelve_thousand_reals_looked_up_on_three_sockets_resolve_as_routed") {
        return Ok(());
    }
    let (balancer, _side_a, _side_b) = balancer(&unique_prefix())?;
    let reals = reals();
    let addresses: Vec<IpAddr> = reals.iter().map(|(address, _)| *address).collect();
    let (resolved, interfaces) = balancer.enter(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let resolved = runtime
            .block_on(async { Resolver::new()?.lookup_threads(3).resolve(&addresses).await })?;
        let interfaces: HashMap<&str, (u32, [u8; 6])> = [
            ("eth0", (ifindex("eth0")?, MAC_ETH0)),
            ("eth1", (ifindex("eth1")?, MAC_ETH1)),
        ]
        .into();
        Ok((resolved, interfaces))
    })?;
    assert_eq!(resolved.len(), reals.len(), "one answer per real");
    for (address, expected) in &reals {
        let got = resolved
            .get(address)
            .with_context(|| format!("no answer for {address}"))?;
        match expected {
            Ok((device, gateway, mac)) => {
                let (index, device_mac) = interfaces[device];
                let NextHop {
                    ifindex,
                    dst_mac,
                    src_mac,
                    gateway: got_gateway,
                    ..
                } = got
                    .clone()
                    .unwrap_or_else(|why| panic!("{address}: {why:?}, expected via {device}"));
                assert_eq!(
                    (ifindex, got_gateway, dst_mac, src_mac),
                    (index, *gateway, *mac, device_mac),
                    "{address}"
                );
            }
            Err(why) => assert_eq!(got.as_ref().err(), Some(why), "{address}"),
        }
    }
    Ok(())
}

#[test]
fn routes_are_looked_up_again_when_the_kernel_announces_a_change_and_only_then() -> Result<()> {
    if !require_root("routes_are_looked_up_again_when_the_kernel_announces_a_change") {
        return Ok(());
    }
    with_reals_via_a(async |balancer, via_a| {
        let through = |hops: &HashMap<IpAddr, _>, gateway: &str| -> Result<()> {
            let gateway: IpAddr = gateway.parse()?;
            for real in via_a {
                let hop: &Result<NextHop, Unresolved> = &hops[real];
                ensure!(
                    hop.as_ref().is_ok_and(|hop| hop.gateway == Some(gateway)),
                    "{real}: {hop:?}, expected via {gateway}"
                );
            }
            Ok(())
        };
        let mut resolver = Resolver::new()?;
        through(&resolver.resolve(via_a).await?, GATEWAY_A)?;
        assert_eq!(resolver.route_lookups(), via_a.len());

        // Nothing announced: the known routes stand.
        settle().await;
        through(&resolver.resolve(via_a).await?, GATEWAY_A)?;
        assert_eq!(resolver.route_lookups(), via_a.len(), "looked up again");

        // The kernel moves them to the other gateway and says so.
        balancer.ip(&["route", "replace", "198.19.0.0/17", "via", GATEWAY_B])?;
        settle().await;
        through(&resolver.resolve(via_a).await?, GATEWAY_B)?;
        assert_eq!(resolver.route_lookups(), 2 * via_a.len());

        // Other reals than last time are looked up whatever was said.
        let fewer = &via_a[..10];
        resolver.resolve(fewer).await?;
        assert_eq!(resolver.route_lookups(), 2 * via_a.len() + fewer.len());
        Ok(())
    })
}

#[test]
fn next_hops_are_rebuilt_only_when_a_route_or_a_neighbour_they_read_changed() -> Result<()> {
    if !require_root("next_hops_are_rebuilt_only_when_a_route_or_a_neighbour_they_read_changed") {
        return Ok(());
    }
    let new_mac = [0x02, 0, 0, 0, 0, 0xaa];
    with_reals_via_a(async |balancer, via_a| {
        let macs = |hops: &HashMap<IpAddr, Result<NextHop, Unresolved>>| -> Vec<[u8; 6]> {
            via_a
                .iter()
                .map(|real| hops[real].as_ref().map_or([0; 6], |hop| hop.dst_mac))
                .collect()
        };
        let mut resolver = Resolver::new()?;
        let first = resolver.resolve(via_a).await?;
        assert!(macs(&first).iter().all(|mac| *mac == MAC_A));

        // Nothing changed: no new answer.
        settle().await;
        assert!(resolver.resolve_if_changed(via_a).await?.is_none());

        // A neighbour nobody reads changes: still none.
        balancer.ip(&[
            "neigh",
            "replace",
            "198.18.1.77",
            "lladdr",
            "02:00:00:00:00:77",
            "dev",
            "eth1",
            "nud",
            "permanent",
        ])?;
        assert!(resolver.resolve_if_changed(via_a).await?.is_none());

        // The gateway's MAC changes: a new answer, with it.
        balancer.ip(&[
            "neigh",
            "replace",
            GATEWAY_A,
            "lladdr",
            &mac_text(new_mac),
            "dev",
            "eth0",
            "nud",
            "permanent",
        ])?;
        let changed = resolver
            .resolve_if_changed(via_a)
            .await?
            .context("no new answer")?;
        assert!(macs(&changed).iter().all(|mac| *mac == new_mac));
        assert!(resolver.resolve_if_changed(via_a).await?.is_none());

        // The route moves: a new answer through the other gateway.
        balancer.ip(&["route", "replace", "198.19.0.0/17", "via", GATEWAY_B])?;
        settle().await;
        let moved = resolver
            .resolve_if_changed(via_a)
            .await?
            .context("no new answer")?;
        assert!(macs(&moved).iter().all(|mac| *mac == MAC_B));
        Ok(())
    })
}

/// Long enough for the route watch to take in an announcement.
async fn settle() {
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
}

/// Runs `test` on a runtime inside the balancer's namespace, with a
/// hundred reals that the balancer routes via gateway A.
fn with_reals_via_a(test: impl AsyncFnOnce(&Netns, &[IpAddr]) -> Result<()> + Send) -> Result<()> {
    let (balancer, _side_a, _side_b) = balancer(&unique_prefix())?;
    let via_a: Vec<IpAddr> = (1..=100u8)
        .map(|host| IpAddr::V4(Ipv4Addr::new(198, 19, 1, host)))
        .collect();
    balancer.enter(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(test(&balancer, &via_a))
    })
}
