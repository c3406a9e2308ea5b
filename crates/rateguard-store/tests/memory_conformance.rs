//! The memory store passes the suite every store must pass.

use rateguard_store::{conformance, MemoryStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_passes_the_conformance_suite() {
    conformance::run_all(&MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_of_one_memory_store_share_buckets_exactly() {
    let store = MemoryStore::new();
    let replicas = [store.clone(), store.clone(), store];
    conformance::exact_under_concurrency(&replicas, 200).await;
}
