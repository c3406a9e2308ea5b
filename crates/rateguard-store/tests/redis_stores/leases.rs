//! `lease.lua` and `share.lua` against `rateguard_core::lease::acquire_all`
//! and `rateguard_core::share::Stored::grant`: the same generated
//! sequences of requests (with leases wanted), share renewals by several
//! holders (both fill modes) and idle gaps go through both, with "now"
//! pinned; every reply field and every stored field (plain `tat`, seal,
//! the ledger hash) must be equal. Plus what the scripts promise beyond
//! the core: TTLs, the seal that makes `token_bucket.lua` deny on a key
//! with shares, and `lease.lua` deciding exactly as `token_bucket.lua`
//! when nothing is wanted.

use rateguard_core::lease::{self, LeaseLimit};
use rateguard_core::share::{Fill, Ledger, ShareRequest, Stored, MAX_STEPS};
use rateguard_core::{bucket, Limit};
use rateguard_store::{conformance::unique_key, BucketKey, LeaseRequest, LeaseScripts, Quota};
use rateguard_store::{BucketStore, RedisLuaStore};
use rateguard_testkit::RedisServer;

use crate::{relaxed, server, Lcg, T0};

/// A bucket's two keys as Redis holds them: the plain key's value ("" when
/// absent) and the ledger hash (empty when absent). Drops both TTLs:
/// "now" is pinned here, so real time must not expire a key still in use
/// in pinned time (the next write sets fresh TTLs).
async fn read_and_persist(redis: &RedisServer, key: &BucketKey) -> (String, Vec<(String, String)>) {
    const READ: &str = "local r = {'v' .. (redis.call('GET', KEYS[1]) or '')} \
        for _, x in ipairs(redis.call('HGETALL', KEYS[2])) do r[#r + 1] = 'v' .. x end \
        redis.call('PERSIST', KEYS[1]) redis.call('PERSIST', KEYS[2]) return r";
    let ledger = key.share_ledger();
    let out = redis
        .cli(&["EVAL", READ, "2", key.as_str(), &ledger])
        .await
        .unwrap();
    let mut lines = out
        .lines()
        .map(|l| l.strip_prefix('v').unwrap_or(l).to_owned());
    let plain = lines.next().unwrap_or_default();
    let rest: Vec<String> = lines.collect();
    let fields = rest
        .chunks(2)
        .map(|c| (c[0].clone(), c[1].clone()))
        .collect();
    (plain, fields)
}

/// Asserts that Redis holds exactly what the core's `stored` says.
async fn assert_stored(
    redis: &RedisServer,
    key: &BucketKey,
    quota: &Quota,
    stored: &Stored,
    at: &str,
) {
    let (plain, fields) = read_and_persist(redis, key).await;
    match stored {
        Stored::Plain { tat_us } => {
            assert!(
                fields.is_empty(),
                "{at}: a ledger {fields:?} where the core has none"
            );
            let expected = if *tat_us == 0 {
                String::new()
            } else {
                tat_us.to_string()
            };
            assert_eq!(plain, expected, "{at}: plain tat");
        }
        Stored::Shared(ledger) => {
            let lua = Ledger::from_fields(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .unwrap_or_else(|e| panic!("{at}: {e}"));
            assert_eq!(&lua, ledger, "{at}: ledger");
            let seal = ledger.seal_us(ledger.at_us, quota);
            assert_eq!(plain, seal.to_string(), "{at}: seal");
        }
    }
}

/// How often the generated sequences reached the branches worth reaching.
#[derive(Debug, Default)]
struct Reached {
    back_to_plain: u32,
    fresh: u32,
    pending: u32,
    merged_steps: u32,
    grants_on_ledgers: u32,
}

/// One generated case: up to three buckets, four holders, a sequence of
/// lease calls and share renewals at increasing pinned times. With
/// `churn`, mostly renewals by two holders whose shares last long and
/// whose demand keeps changing, so their grants pile up and merge.
async fn run_case(
    scripts: &LeaseScripts,
    redis: &RedisServer,
    rng: &mut Lcg,
    case: usize,
    churn: bool,
    reached: &mut Reached,
) {
    let n = 1 + rng.below(3) as usize;
    let quotas: Vec<Quota> = (0..n)
        .map(|_| {
            let capacity = 1 + rng.below(30);
            Quota::new(capacity, rng.pick(&[1.0, 7.0, 100.0, 1000.0])).unwrap()
        })
        .collect();
    let keys: Vec<BucketKey> = (0..n)
        .map(|i| unique_key(&format!("lease-eq-{case}-{i}")))
        .collect();
    let holders = ["gw-a", "gw-b", "envoy 1", "envoy:2"];
    let mut stored = vec![Stored::default(); n];
    let mut now = T0;
    for step in 0..40 {
        let slowest = quotas.iter().map(Quota::fill_time_us).max().unwrap();
        let (short, long) = (1 + rng.below(5_000), rng.below(slowest + 1));
        now += rng.pick(&[0, 1, short, long]);
        let renewal = if churn {
            rng.below(4) != 0
        } else {
            rng.below(3) == 0
        };
        if renewal {
            // A holder renews its share of one bucket.
            let k = rng.below(n as u64) as usize;
            let q = quotas[k];
            let req = ShareRequest {
                holder: rng.pick(&holders[..if churn { 2 } else { 4 }]),
                demand: if churn {
                    rng.below(1001) as u32
                } else {
                    rng.pick(&[0, 1, 333, 500, 999, 1000, 1200])
                },
                ttl_us: if churn {
                    100 * q.fill_time_us()
                } else {
                    1 + rng.below(q.fill_time_us().max(50_000))
                },
                margin_us: rng.pick(&[0, 1_000, 5_000]),
                fill: if rng.below(3) == 0 {
                    Fill::Full
                } else {
                    Fill::Carry
                },
            };
            let at = format!(
                "case {case} step {step} share {k} {req:?} at +{} µs",
                now - T0
            );
            let core = stored[k].grant(now, &q, &req);
            let lua = scripts
                .share_at(&keys[k], &q, &req, now)
                .await
                .expect("share call");
            assert_eq!(lua, core, "{at}");
            assert_stored(redis, &keys[k], &q, &stored[k], &at).await;
            reached.fresh += u32::from(core.fresh);
            if let Stored::Shared(l) = &stored[k] {
                reached.pending += u32::from(l.pending() > 0);
                let most = l.holders.values().map(|h| h.steps.len()).max();
                reached.merged_steps += u32::from(most == Some(MAX_STEPS));
            }
        } else {
            // A request over some of the buckets, in some order.
            let mut order: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                order.swap(i, rng.below(i as u64 + 1) as usize);
            }
            order.truncate(1 + rng.below(n as u64) as usize);
            let limits: Vec<LeaseLimit> = order
                .iter()
                .map(|&k| {
                    let q = quotas[k];
                    let cost = rng.pick(&[0, 1, 1, 1, 2, q.capacity(), q.capacity() + 1]);
                    let limit = Limit {
                        quota: q,
                        cost,
                        enforced: rng.below(5) != 0,
                    };
                    let some = rng.below(u64::from(q.capacity()) + 1) as u32;
                    let want = rng.pick(&[0, 0, 1, some]);
                    LeaseLimit { limit, want }
                })
                .collect();
            let requests: Vec<LeaseRequest> = order
                .iter()
                .zip(&limits)
                .map(|(&k, &limit)| LeaseRequest {
                    key: keys[k].clone(),
                    limit,
                })
                .collect();
            let at = format!(
                "case {case} step {step} lease {order:?} {limits:?} at +{} µs",
                now - T0
            );
            let mut mine: Vec<Stored> = order.iter().map(|&k| stored[k].clone()).collect();
            let core = lease::acquire_all(now, &mut mine, &limits);
            for (&k, s) in order.iter().zip(mine) {
                let was_shared = matches!(stored[k], Stored::Shared(_));
                reached.grants_on_ledgers += u32::from(was_shared && core.allowed);
                reached.back_to_plain += u32::from(was_shared && matches!(s, Stored::Plain { .. }));
                stored[k] = s;
            }
            let lua = scripts
                .acquire_all_at(&requests, now)
                .await
                .expect("lease call");
            assert_eq!(lua, core, "{at}");
            for &k in &order {
                assert_stored(redis, &keys[k], &quotas[k], &stored[k], &at).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_and_share_scripts_match_the_core_on_generated_sequences() {
    let redis = server();
    let scripts = LeaseScripts::connect(&relaxed(vec![redis.url()]))
        .await
        .unwrap();
    let mut rng = Lcg(0x1ea5_e526);
    let mut reached = Reached::default();
    for case in 0..48 {
        run_case(&scripts, &redis, &mut rng, case, case >= 40, &mut reached).await;
    }
    let Reached {
        back_to_plain,
        fresh,
        pending,
        merged_steps,
        grants_on_ledgers,
    } = reached;
    assert!(
        [
            back_to_plain,
            fresh,
            pending,
            merged_steps,
            grants_on_ledgers
        ]
        .iter()
        .all(|&n| n > 0),
        "the sequences must reach every branch: {reached:?}",
        reached = (
            back_to_plain,
            fresh,
            pending,
            merged_steps,
            grants_on_ledgers
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_script_decides_like_token_bucket_when_nothing_is_wanted() {
    let redis = server();
    let opts = relaxed(vec![redis.url()]);
    let scripts = LeaseScripts::connect(&opts).await.unwrap();
    let store = RedisLuaStore::connect(&opts).await.unwrap();
    let mut rng = Lcg(0x706b_2026);
    for case in 0..20 {
        let quota = Quota::new(1 + rng.below(20), rng.pick(&[1.0, 3.0, 50.0])).unwrap();
        let (a, b) = (
            unique_key(&format!("tb-{case}")),
            unique_key(&format!("ls-{case}")),
        );
        let mut now = T0;
        for step in 0..15 {
            let gap = rng.below(quota.fill_time_us() + 1);
            now += rng.pick(&[0, 1, gap]);
            let cost = rng.pick(&[0, 1, 1, 2, quota.capacity() + 1]);
            let tb = store
                .acquire_batch_at(&a, &quota, cost, 1, now)
                .await
                .unwrap();
            let limit = LeaseLimit::ordinary(Limit::enforced(quota, cost));
            let request = [LeaseRequest {
                key: b.clone(),
                limit,
            }];
            let ls = scripts.acquire_all_at(&request, now).await.unwrap();
            let at = format!("case {case} step {step}: {quota:?} cost {cost}");
            assert_eq!(ls.request().limits()[0], Some(tb.decision(0)), "{at}");
            assert_eq!(ls.buckets[0].debt.backlog_us, tb.backlog_us, "{at}");
            let both = redis.cli(&["MGET", a.as_str(), b.as_str()]).await.unwrap();
            let (ta, tb_) = both.split_once('\n').unwrap_or((both.as_str(), ""));
            // Both write the same tat when they spend (token_bucket.lua also
            // rewrites an equivalent one on a cost-0 inspection).
            if cost > 0 && tb.allowed == 1 {
                assert_eq!(ta, tb_, "{at}: the same tat");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_and_its_seal_expire_together_and_token_bucket_denies_meanwhile() {
    let redis = server();
    let opts = relaxed(vec![redis.url()]);
    let scripts = LeaseScripts::connect(&opts).await.unwrap();
    let store = RedisLuaStore::connect(&opts).await.unwrap();
    let key = unique_key("sealed");
    let quota = Quota::new(10, 10.0).unwrap(); // C·T = 1 s
    let req = ShareRequest {
        holder: "gw-a",
        demand: 500,
        ttl_us: 2_000_000,
        margin_us: 10_000,
        fill: Fill::Carry,
    };
    let grant = scripts.share(&key, &quota, &req).await.unwrap();
    assert_eq!((grant.parts, grant.burst, grant.added), (500, 5, 5));
    let pttl = |k: String| {
        let redis = &redis;
        async move {
            redis
                .cli(&["PTTL", &k])
                .await
                .unwrap()
                .parse::<i64>()
                .unwrap()
        }
    };
    let (ledger, plain) = (pttl(key.share_ledger()).await, pttl(key.to_string()).await);
    // Until the step expires (2 s + 10 ms), then the debt drains (1 s),
    // plus a second of slack; the seal lives a millisecond longer.
    assert!((3_900..=4_010).contains(&ledger), "ledger PTTL {ledger}");
    assert!(
        (0..=5).contains(&(plain - ledger)),
        "plain {plain} vs ledger {ledger}"
    );
    // token_bucket.lua does not know the shares: it must see an empty bucket.
    let denied = store.acquire(&key, &quota, 1).await.unwrap();
    assert!(!denied.allowed, "{denied:?}");
    assert_eq!(denied.remaining, 0);
    // lease.lua decides on the ordinary part: 10 − 5 reserved = 5 tokens.
    let ordinary = [LeaseRequest {
        key: key.clone(),
        limit: LeaseLimit::ordinary(Limit::enforced(quota, 5)),
    }];
    assert!(scripts.acquire_all(&ordinary).await.unwrap().allowed);
    assert!(!scripts.acquire_all(&ordinary).await.unwrap().allowed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_match_the_core_at_the_precision_edges() {
    let redis = server();
    let scripts = LeaseScripts::connect(&relaxed(vec![redis.url()]))
        .await
        .unwrap();
    // The longest fill time with a large capacity, and one token per µs:
    // drains of elapsed × free parts near 2^53, divisions that a double
    // rounds up.
    let cases = [
        Quota::new(366 * 24 * 3600, 1.0).unwrap(),
        Quota::new(u64::from(u32::MAX), 1_000_000.0).unwrap(),
        Quota::new(3, 3.0).unwrap(),
    ];
    for (case, quota) in cases.iter().enumerate() {
        let key = unique_key(&format!("edge-{case}"));
        let mut stored = Stored::default();
        let fill = quota.fill_time_us();
        let mut now = T0;
        for (step, (dt, holder, demand)) in [
            (0, "a", 999),
            (fill / 3 + 1, "b", 1),
            (rateguard_core::share::MAX_DRAIN_STEP_US - 7, "a", 333),
            (fill / 7 + 3, "c", 1000),
        ]
        .into_iter()
        .enumerate()
        {
            now += dt;
            let req = ShareRequest {
                holder,
                demand,
                ttl_us: fill,
                margin_us: 3,
                fill: Fill::Carry,
            };
            let at = format!("{quota:?} step {step}");
            assert_eq!(
                scripts.share_at(&key, quota, &req, now).await.unwrap(),
                stored.grant(now, quota, &req),
                "{at}"
            );
            let limit = LeaseLimit {
                limit: Limit::enforced(*quota, 1 + step as u32),
                want: quota.capacity() / 3,
            };
            let request = [LeaseRequest {
                key: key.clone(),
                limit,
            }];
            let core = lease::acquire_all(now + 1, std::slice::from_mut(&mut stored), &[limit]);
            assert_eq!(
                scripts.acquire_all_at(&request, now + 1).await.unwrap(),
                core,
                "{at}"
            );
            assert_stored(&redis, &key, quota, &stored, &at).await;
        }
    }
    // A plain bucket decided like the core, at the same edges.
    let q = cases[1];
    let key = unique_key("edge-plain");
    let limit = LeaseLimit {
        limit: Limit::enforced(q, 7),
        want: u32::MAX - 7,
    };
    let request = [LeaseRequest {
        key: key.clone(),
        limit,
    }];
    let lua = scripts.acquire_all_at(&request, T0).await.unwrap();
    assert_eq!(lua.buckets[0].granted, u32::MAX - 7);
    assert_eq!(bucket::acquire(0, T0, &q, 1).tat, T0 + 1);
}
