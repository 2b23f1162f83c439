//! Configs for unit tests, read from YAML the way `lbd` reads its file.

use crate::config::{self, Config};

/// `yaml` as a config file, on a host where every interface exists.
pub fn config(yaml: &str) -> Config {
    config::parse(yaml, "test.yaml", &|_| true).expect("valid test config")
}

/// A config on `eth0` with `services`, each one YAML flow mapping
/// (`{ name: web, vip: ..., reals: [...] }`).
pub fn with_services(services: &[impl AsRef<str>]) -> Config {
    let mut yaml = String::from("interfaces: [{ name: eth0 }]\nservices:\n");
    for service in services {
        yaml += &format!("  - {}\n", service.as_ref());
    }
    config(&yaml)
}
