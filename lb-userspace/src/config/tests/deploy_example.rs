//! The example shipped in deploy/ stays valid as the schema evolves.
use crate::config;

#[test]
fn deploy_example_config_is_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/lb.yaml");
    let config = config::load(&path, &|name| name == "eth0").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.services.len(), 5);
    assert!(config.services.iter().any(|s| s.port == 0));
    for forwarding in [config::Forwarding::Tun, config::Forwarding::Nat] {
        assert!(config.services.iter().any(|s| s.forwarding == forwarding));
    }
    assert!(config.tunnel.source_v4.is_some() && config.tunnel.source_v6.is_some());
    assert_eq!(config.timeouts, config::TimeoutsConfig::default());
    assert!(config.icmp_echo_reply);
}
