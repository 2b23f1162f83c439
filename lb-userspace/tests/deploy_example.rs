//! The example shipped in deploy/ stays valid as the schema evolves.
use lb_userspace::config;

#[test]
fn deploy_example_config_is_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/lb.yaml");
    let config = config::load(&path, &|name| name == "eth0").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.services.len(), 3);
    assert!(config.services.iter().any(|s| s.port == 0));
}
