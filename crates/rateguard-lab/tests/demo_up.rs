//! `rateguard-lab up` programmatically: the demo topology (real redis,
//! nginx, `rateguard` replicas and backends) answers through its nginx,
//! throttles one API key, spreads over every replica, and on shutdown every
//! process it started is gone.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use rateguard_contract::StoreKind;
use rateguard_lab::check;
use rateguard_lab::demo::{self, DemoOptions};
use rateguard_lab::LabError;

/// This process's descendants, from `/proc/<pid>/stat` (ppid is the field
/// after the parenthesised command name).
fn descendants() -> BTreeSet<u32> {
    let mut parent: BTreeMap<u32, u32> = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
            parent.insert(pid, ppid);
        }
    }
    let mut out = BTreeSet::new();
    let mut frontier = vec![std::process::id()];
    while let Some(p) = frontier.pop() {
        for (&child, &pp) in &parent {
            if pp == p && out.insert(child) {
                frontier.push(child);
            }
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    // A reaped process has no /proc entry; a zombie would still count.
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The demo's `/api/data` policy: capacity 20, refill 0.5/s.
const DATA_CAPACITY: usize = 20;
const DATA_REFILL_PER_SEC: f64 = 0.5;

/// Runs `up` with `store` on `port`, sends 80 sequential requests with one
/// key to `/api/data`, shuts it down through the shutdown future and checks
/// every child is gone. Returns the answers and, for each, when it had come
/// back (since just before the first request was sent).
async fn exercise(store: StoreKind, port: u16) -> (Vec<check::Line>, Vec<Duration>) {
    let mut opts = DemoOptions::new(common::gateway_bin());
    opts.store = store;
    opts.port = port;
    // Generous: a debug build on a busy machine must not fail open.
    opts.store_timeout_ms = 1000;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = stop_rx.await;
        };
        demo::up(&opts, shutdown, move |d| {
            let _ = ready_tx.send((d.url(), d.redis_urls(), d.banner()));
        })
        .await
    });
    let (url, redis_urls, banner) = ready_rx.await.expect("the demo came up");
    if port != 0 {
        assert_eq!(url, format!("http://127.0.0.1:{port}"));
    }
    assert!(banner.contains(&format!("{url}/api/data")), "{banner}");
    assert!(
        banner.contains(
            "/api/data    client: capacity 20, refill 0.5/s; per-ip: capacity 60, refill 1.5/s"
        ),
        "{banner}"
    );
    assert_eq!(redis_urls.is_empty(), !store.needs_server());
    println!("{banner}");
    let children = descendants();
    println!("{store}: {} processes: {children:?}", children.len());
    // 2 backends, 3 replicas, 2 nginx masters (+ workers), redis if any.
    let expected = 7 + usize::from(store.needs_server());
    assert!(
        children.len() >= expected,
        "{store}: {} processes running, expected at least {expected}",
        children.len()
    );

    let mut answered = Vec::new();
    let sent = Instant::now();
    let lines = check::sequential(
        &format!("{url}/api/data"),
        80,
        &format!("{store}-key"),
        |_| answered.push(sent.elapsed()),
    )
    .await
    .expect("requests through nginx");

    println!("{store}: {}", runs(&lines));
    stop_tx.send(()).expect("the demo is waiting");
    task.await.unwrap().expect("the demo stopped cleanly");
    let left: Vec<u32> = children.iter().copied().filter(|&p| alive(p)).collect();
    assert!(
        left.is_empty(),
        "{store}: still running after shutdown: {left:?}"
    );
    (lines, answered)
}

/// Statuses in order, compact: `200×20 429×60`.
fn runs(lines: &[check::Line]) -> String {
    let mut out: Vec<(u16, usize)> = Vec::new();
    for l in lines {
        match out.last_mut() {
            Some((s, n)) if *s == l.status => *n += 1,
            _ => out.push((l.status, 1)),
        }
    }
    out.iter()
        .map(|(s, n)| format!("{s}×{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_throttles_spreads_and_stops_every_process() {
    // A taken port fails at once, with the port in the message.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut opts = DemoOptions::new(common::gateway_bin());
    opts.port = port;
    let err = demo::Demo::start(&opts).expect_err("the port is taken");
    assert!(matches!(err, LabError::PortTaken { .. }), "{err}");
    assert!(err.to_string().contains(&port.to_string()), "{err}");
    drop(taken);

    // memory on a free port: every replica has its own 20-token bucket.
    let (lines, _) = exercise(StoreKind::Memory, 0).await;
    let memory = check::CheckSummary::of(&lines);
    assert_eq!(memory.errors, 0, "{memory:?}");
    assert_eq!(memory.per_replica.len(), 3, "{memory:?}");
    assert!(
        memory.allowed > 20,
        "not shared, so more than one bucket's worth: {memory:?}"
    );
    assert!(memory.throttled > 0, "{memory:?}");

    // redis-lua on a pinned port: one shared bucket of 20 tokens that
    // refills one token every 2 s.
    let pinned = rateguard_testkit::free_port();
    let (lines, answered) = exercise(StoreKind::RedisLua, pinned).await;
    let shared = check::CheckSummary::of(&lines);
    assert_eq!(shared.errors, 0, "{shared:?}");
    assert_eq!(shared.per_replica.len(), 3, "{shared:?}");
    assert_eq!(shared.allowed + shared.throttled, 80, "{shared:?}");
    // The first 20 pass; after that, by the time the k-th answer is back,
    // at most one more per 2 s since the first request was sent can have
    // passed. On a fast machine: exactly 20 of 80, the 21st throttled.
    let statuses: Vec<u16> = lines.iter().map(|l| l.status).collect();
    assert!(
        statuses[..DATA_CAPACITY].iter().all(|&s| s == 200),
        "{}",
        runs(&lines)
    );
    let mut allowed = 0;
    for (k, (line, at)) in lines.iter().zip(&answered).enumerate() {
        allowed += usize::from(line.status == 200);
        let refilled = (at.as_secs_f64() * DATA_REFILL_PER_SEC).floor() as usize;
        assert!(
            allowed <= DATA_CAPACITY + refilled,
            "{} allowed among the first {} answers, {at:?} after the first was sent: \
             a shared bucket allows {DATA_CAPACITY} + {refilled} refilled ({})",
            allowed,
            k + 1,
            runs(&lines)
        );
    }
}
