use super::*;
use crate::control::LiveReal;
use crate::{
    control::{Health, QuorumStatus},
    estimator::Rates,
};

#[test]
fn health_metrics_cover_probed_reals_and_every_quorum() {
    let check = CheckStatus {
        kind: "http".to_owned(),
        state: "down".to_owned(),
        seconds_in_state: 3,
        last_failure: Some("connection refused".to_owned()),
        last_probe_ms: Some(1),
        probes: 9,
        failures: 4,
        failures_by_kind: [("refused".to_owned(), 3), ("timeout".to_owned(), 1)].into(),
        went_up: 0,
        went_down: 1,
    };
    let real = |address: &str, check: Option<CheckStatus>| LiveReal {
        address: address.parse().unwrap(),
        rates: Rates::default(),
        health: Health::Down,
        check,
        sorry_server: false,
    };
    let live = vec![LiveService {
        name: "web".to_owned(),
        protocol: "TCP".to_owned(),
        address: "198.18.1.10:80".parse().unwrap(),
        rates: Rates::default(),
        quorum: Some(QuorumStatus {
            quorate: false,
            healthy_weight: 0,
            quorum: 1,
            on_quorum_loss: "drop".to_owned(),
        }),
        reals: vec![
            real("198.18.0.11:80", Some(check)),
            real("198.18.0.12:80", None),
        ],
    }];
    let text = render_health(&live);
    for line in [
        "lb_real_up{service=\"web\",real=\"198.18.0.11:80\"} 0",
        "lb_real_health_transitions_total{service=\"web\",real=\"198.18.0.11:80\",to=\"down\"} 1",
        "lb_real_probe_failures_total{service=\"web\",real=\"198.18.0.11:80\",reason=\"refused\"} 3",
        "lb_real_probe_failures_total{service=\"web\",real=\"198.18.0.11:80\",reason=\"timeout\"} 1",
        "lb_service_quorum{service=\"web\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
    }
    assert!(
        !text.contains("198.18.0.12"),
        "an unprobed real has no health metrics:\n{text}"
    );
}
