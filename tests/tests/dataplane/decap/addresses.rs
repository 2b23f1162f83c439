//! The address map follows the host.

use std::collections::BTreeMap;

use lb_tests::frames::ip;

use super::{
    LB4, REAL4, REAL4_OTHER_IF, REAL6,
    frames::{Inner, Tunnel},
    runner::{Case, load},
};

#[test]
fn an_address_removed_from_the_map_is_no_longer_decapsulated() {
    let Some(mut real) = load() else { return };
    let to_other_if = Tunnel::new(LB4, REAL4_OTHER_IF, Inner::udp4());
    real.expect_all(&[Case::stripped("before", &to_other_if)]);

    let changes = real
        .decap
        .sync_addresses(&BTreeMap::from([(ip(REAL4), 2), (ip(REAL6), 2)]))
        .expect("syncing the address map");
    assert_eq!(changes.removed, [ip(REAL4_OTHER_IF)]);
    assert!(changes.added.is_empty(), "{changes:?}");
    real.expect_all(&[
        Case::untouched("after its removal", to_other_if.bytes()),
        Case::stripped(
            "the others still work",
            &Tunnel::to_real(true, Inner::udp6()),
        ),
    ]);
    assert_eq!(real.decap.decapsulated().unwrap(), 2);
}
