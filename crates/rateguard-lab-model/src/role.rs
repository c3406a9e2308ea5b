//! [`Role`]: the process roles whose CPU the lab charges per request.

rateguard_contract::vocabulary! {
    /// A process role whose CPU time the lab charges to the requests it
    /// served (`cpu_us_per_request` in `summary.json`).
    pub enum Role ("role") {
        /// The gateway replicas (or the `rateguard rls` replicas).
        Gateway = "gateway",
        /// Redis: the standalone server or every cluster node.
        Store = "store",
        /// The NGINX in front (of the gateways, or doing `limit_req`).
        Nginx = "nginx",
        /// What answers behind the limiter: the mock backends and the NGINX
        /// balancing them (or answering `return 200` itself).
        Backends = "backends",
        /// The load generator (the lab process, less its network-delay threads).
        Loadgen = "loadgen",
    }
}
