use rateguard_contract::{OnError, StoreKind};
use rateguard_lab_model::{Frontend, KeyMix, ScenarioId};
use rateguard_report::{Settings, Subject};

use super::*;

fn settings() -> Settings {
    Settings {
        repetitions: 3,
        stores: vec![StoreKind::Memory, StoreKind::RedisLua],
        references: vec![Frontend::None],
        rls_stores: vec![StoreKind::RedisLua],
        scenarios: vec![
            ScenarioId::Burst,
            ScenarioId::Capacity,
            ScenarioId::Throughput,
            ScenarioId::StoreOutage,
        ],
        store_rtts_ms: vec![0.0, 1.0],
        keys: vec![KeyMix::Hot, KeyMix::Zipf],
        on_error: vec![OnError::Allow, OnError::Deny],
        ..Settings::default()
    }
}

#[test]
fn every_planned_record_is_one_step() {
    let s = settings();
    let plan = LabPlan::new(&s, 2);
    let mut keys: Vec<_> = plan.steps().map(|st| st.key).collect();
    assert_eq!(keys.len(), s.planned().len());
    for k in s.planned() {
        let at = keys.iter().position(|x| *x == k).expect("planned once");
        keys.remove(at);
    }
    assert!(keys.is_empty());
}

#[test]
fn deployments_in_run_order() {
    let plan = LabPlan::new(&settings(), 2);
    let names: Vec<String> = plan
        .deployments
        .iter()
        .map(|d| format!("{:?} {}", d.pass, d.name()))
        .collect();
    assert_eq!(
        names,
        [
            "First memory",
            "First redis-lua at 0 ms RTT (on_error = allow)",
            "First redis-lua at 0 ms RTT (on_error = deny)",
            "First none",
            "First rls/redis-lua at 0 ms RTT",
            "First redis-lua at 1 ms RTT",
            "Second memory",
            "Second redis-lua at 0 ms RTT",
            "Second none",
            "Second redis-lua at 1 ms RTT",
        ]
    );
    // Outage steps run their own repetitions, last on their deployment.
    let allow = &plan.deployments[1];
    let last = allow.steps.last().unwrap();
    assert_eq!(last.key.scenario, ScenarioId::StoreOutage);
    assert_eq!(last.repetitions, 2);
    assert_eq!(allow.steps[0].repetitions, 3);
    assert!(plan
        .deployments
        .iter()
        .all(|d| d.steps.iter().all(|st| d.pass.has(st.key.scenario))));
}

#[test]
fn printed_plan_names_each_step() {
    let plan = LabPlan::new(&settings(), 2);
    let text = plan.to_string();
    assert!(text.starts_with("pass 1: capacity and the accuracy scenarios\n  memory: burst ×3, capacity (hot keys) ×3, capacity (zipf keys) ×3\n"), "{text}");
    assert!(
        text.contains("\n  redis-lua at 0 ms RTT (on_error = deny): store-outage ×2\n"),
        "{text}"
    );
    assert!(text.contains("pass 2: throughput"), "{text}");
    let first = plan.steps().next().unwrap().key;
    assert_eq!(plan.position(&first), 0);
    assert_eq!(first.subject, Subject::gateway(StoreKind::Memory));
}
