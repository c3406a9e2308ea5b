//! `compose/` is consistent with the rest of the repository (issue 6).
//!
//! There is no Docker engine on the build machines, so these checks are
//! static: they read `compose/docker-compose.yml` and `compose/.env` the way
//! Compose does, run the real `rateguard check-config` on the mounted
//! configs with the environment Compose would give the gateways, and check
//! that ports, names and the nginx template line up.

mod support;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Output};

use rateguard_gateway::config::env_key;
use rateguard_gateway::config::{self, StoreKind, ValidConfig};
use support::{read, repo, url_port, Compose};

/// The gateway services, the profile each runs in, and its store kind.
const GATEWAYS: [(&str, &str, StoreKind); 2] = [
    ("gateway", "redis", StoreKind::RedisLua),
    ("gateway-cluster", "cluster", StoreKind::FredCluster),
];
/// Where the gateways find their config inside the container.
const CONFIG_IN_CONTAINER: &str = "/etc/rateguard/rateguard.toml";

/// Runs the built binary with exactly `env` (nothing inherited) in an
/// empty directory, so no stray `.env` or `RATEGUARD_*` variable leaks in.
fn rateguard(args: &[&str], env: &BTreeMap<String, String>) -> Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_rateguard"))
        .args(args)
        .env_clear()
        .envs(env)
        .current_dir(dir.path())
        .output()
        .expect("run rateguard")
}

/// The mounted config of `service`, loaded with the gateway's own loader
/// and the service's `RATEGUARD_<SECTION>_<KEY>` overrides applied.
fn effective_config(c: &Compose, service: &str) -> ValidConfig {
    let path = c.mounted_file(service, CONFIG_IN_CONTAINER);
    let mut table = config::read_table(&path).unwrap();
    for (name, value) in c.environment(service) {
        if let Some(key) = env_key(&name) {
            config::apply_override(&mut table, &key, &value).unwrap();
        }
    }
    config::load_table(table).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn services_profiles_and_startup_order() {
    let c = Compose::load();
    let mut names = c.service_names();
    names.sort();
    let expected = [
        "backend",
        "gateway",
        "gateway-cluster",
        "nginx",
        "redis",
        "redis-cluster-init",
        "redis-node-1",
        "redis-node-2",
        "redis-node-3",
    ];
    assert_eq!(names, expected);
    assert_eq!(c.env["COMPOSE_PROFILES"], "redis", "one Redis by default");
    assert_eq!(c.profiles("redis"), ["redis"]);
    assert_eq!(c.profiles("gateway"), ["redis"]);
    for s in [
        "gateway-cluster",
        "redis-cluster-init",
        "redis-node-1",
        "redis-node-2",
        "redis-node-3",
    ] {
        assert_eq!(c.profiles(s), ["cluster"], "{s}");
    }
    for s in ["nginx", "backend"] {
        assert!(c.profiles(s).is_empty(), "{s} runs in every profile");
    }
    assert_eq!(c.scalar(&c.service("gateway")["deploy"]["replicas"]), "3");
    assert_eq!(
        c.scalar(&c.service("gateway-cluster")["deploy"]["replicas"]),
        "3"
    );
    assert_eq!(c.scalar(&c.service("backend")["deploy"]["replicas"]), "2");

    let condition = |s: &str, dep: &str| c.scalar(&c.service(s)["depends_on"][dep]["condition"]);
    assert_eq!(condition("gateway", "redis"), "service_healthy");
    assert_eq!(condition("gateway", "backend"), "service_healthy");
    assert_eq!(
        condition("gateway-cluster", "redis-cluster-init"),
        "service_completed_successfully"
    );
    assert_eq!(condition("gateway-cluster", "backend"), "service_healthy");
    for n in ["redis-node-1", "redis-node-2", "redis-node-3"] {
        assert_eq!(condition("redis-cluster-init", n), "service_healthy");
    }
    for s in names.iter().filter(|s| *s != "redis-cluster-init") {
        let test = c.strings(&c.service(s)["healthcheck"]["test"]);
        assert!(
            test.first().is_some_and(|t| t == "CMD"),
            "{s} has no healthcheck"
        );
    }
}

#[test]
fn mounted_configs_pass_check_config_with_the_compose_environment() {
    let c = Compose::load();
    for (service, _, kind) in GATEWAYS {
        assert_eq!(c.command_arg(service, "--config"), CONFIG_IN_CONTAINER);
        let file = c.mounted_file(service, CONFIG_IN_CONTAINER);
        let env = c.environment(service);
        let out = rateguard(&["check-config", "--config", file.to_str().unwrap()], &env);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{service}: check-config {} failed:\n{}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(&format!("store {}", kind.as_str())),
            "{service}: {stdout}"
        );
        assert_eq!(effective_config(&c, service).store.kind, kind, "{service}");
    }
}

#[test]
fn check_config_catches_a_misspelled_override() {
    // The control for the test above: the same run fails when a variable
    // names a key the schema does not have.
    let c = Compose::load();
    let file = c.mounted_file("gateway", CONFIG_IN_CONTAINER);
    let mut env = c.environment("gateway");
    env.insert("RATEGUARD_STORE_KINDD".into(), "redis-lua".into());
    let out = rateguard(&["check-config", "--config", file.to_str().unwrap()], &env);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("store.kindd"));
}

#[test]
fn every_rateguard_variable_is_a_real_key_or_flag() {
    let c = Compose::load();
    // Variables the command line reads (`[env: NAME=...]` in --help).
    let mut cli_vars = Vec::new();
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["check-config", "--help"],
    ] {
        let out = rateguard(args, &BTreeMap::new());
        let help = String::from_utf8_lossy(&out.stdout).into_owned();
        cli_vars.extend(
            help.split("[env: ")
                .skip(1)
                .filter_map(|s| s.split(['=', ']']).next().map(str::to_owned)),
        );
    }
    assert!(
        cli_vars.iter().any(|v| v == "RATEGUARD_CONFIG"),
        "{cli_vars:?}"
    );

    // Compose-set variables: a section key (checked against the schema by
    // check-config above) or a command-line variable. Anything else would be
    // silently ignored by the binary.
    let mut names: Vec<String> = GATEWAYS
        .iter()
        .flat_map(|(s, _, _)| c.environment(s).into_keys())
        .collect();
    // `.env` entries reach the gateways only through the compose file.
    let compose_text = read("compose/docker-compose.yml");
    // (COMPOSE_* variables configure Compose itself.)
    for name in c.env.keys().filter(|k| !k.starts_with("COMPOSE_")) {
        assert!(
            compose_text.contains(&format!("${{{name}")),
            ".env sets {name} but docker-compose.yml never uses it"
        );
        names.push(name.clone());
    }
    let used_outside: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("RATEGUARD_"))
        .filter(|n| env_key(n).is_none() && !cli_vars.contains(n))
        .collect();
    assert!(
        used_outside.is_empty(),
        "not config keys nor CLI variables: {used_outside:?}"
    );
}

#[test]
fn ports_and_names_line_up() {
    let c = Compose::load();
    let nginx_env = c.environment("nginx");
    // Published port -> nginx's listen.
    let ports = c.strings(&c.service("nginx")["ports"]);
    assert_eq!(
        ports,
        [format!(
            "{}:{}",
            c.env["NGINX_PORT"], nginx_env["NGINX_LISTEN"]
        )]
    );
    let upstream = &nginx_env["NGINX_UPSTREAM_SERVERS"];
    assert!(
        upstream.contains(" resolve") && upstream.contains("zone "),
        "{upstream}"
    );
    assert_eq!(nginx_env["NGINX_RESOLVER"], "127.0.0.11", "Docker's DNS");
    // `server NAME resolve` in an upstream needs nginx >= 1.27.3.
    let image = c.scalar(&c.service("nginx")["image"]);
    let version: Vec<u32> = image
        .trim_start_matches("nginx:")
        .split('-')
        .next()
        .unwrap()
        .split('.')
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(
        version.as_slice() >= [1, 27, 3].as_slice(),
        "{image} lacks upstream `resolve`"
    );

    let nginx_ip: IpAddr = c
        .scalar(&c.service("nginx")["networks"]["default"]["ipv4_address"])
        .parse()
        .unwrap();
    let subnet = c.scalar(&c.doc["networks"]["default"]["ipam"]["config"][0]["subnet"]);
    let (net, bits) = subnet.split_once('/').unwrap();
    let (IpAddr::V4(ip), net): (IpAddr, std::net::Ipv4Addr) = (nginx_ip, net.parse().unwrap())
    else {
        panic!("IPv4 expected");
    };
    let mask = u32::MAX << (32 - bits.parse::<u32>().unwrap());
    assert_eq!(
        u32::from(ip) & mask,
        u32::from(net) & mask,
        "nginx {ip} outside {subnet}"
    );

    let backend_cmd = c.strings(&c.service("backend")["entrypoint"]).join(" ");
    let backend_port: u16 = backend_cmd
        .split("--listen 0.0.0.0:")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("backend listens on 0.0.0.0:PORT")
        .parse()
        .unwrap();
    let backend_health = c
        .strings(&c.service("backend")["healthcheck"]["test"])
        .join(" ");
    assert_eq!(url_port(&backend_health), backend_port);

    let dockerfile = read("Dockerfile");
    let docker_health = dockerfile
        .lines()
        .skip_while(|l| !l.starts_with("HEALTHCHECK"))
        .take(2)
        .collect::<String>();
    for (service, profile, _) in GATEWAYS {
        let cfg = effective_config(&c, service);
        let (listen, admin) = (cfg.server.listen, cfg.server.admin_listen);
        assert!(
            listen.ip().is_unspecified() && admin.ip().is_unspecified(),
            "{service} must listen on all interfaces"
        );
        assert!(
            upstream.contains(&format!("server gateway:{} ", listen.port())),
            "nginx upstream vs {service} listen {listen}: {upstream}"
        );
        let health = c
            .strings(&c.service(service)["healthcheck"]["test"])
            .join(" ");
        assert_eq!(url_port(&health), admin.port(), "{service} healthcheck");
        assert_eq!(
            url_port(&docker_health),
            admin.port(),
            "Dockerfile HEALTHCHECK"
        );
        assert!(dockerfile.contains(&format!("EXPOSE {} {}", listen.port(), admin.port())));
        // nginx reaches the cluster gateways under the same name.
        if service != "gateway" {
            let aliases = c.strings(&c.service(service)["networks"]["default"]["aliases"]);
            assert!(
                aliases.iter().any(|a| a == "gateway"),
                "{service} aliases {aliases:?}"
            );
        }
        // Upstream = the backend service on its port.
        assert_eq!(
            cfg.upstream.url,
            format!("http://backend:{backend_port}"),
            "{service}"
        );
        // Store URLs name Redis services of the same profile, on Redis's port.
        for url in &cfg.store.urls {
            let host = url.trim_start_matches("redis://").trim_end_matches(":6379");
            assert!(url.ends_with(":6379") && host != url, "{url}");
            assert_eq!(c.profiles(host), [profile], "{service} store URL {url}");
        }
        // X-Forwarded-For is believed from nginx only.
        assert!(
            cfg.identity
                .trusted_proxies
                .iter()
                .any(|n| n.contains(&nginx_ip)),
            "{service} does not trust nginx {nginx_ip}"
        );
        // Docker waits long enough for the drain before SIGKILL.
        assert_eq!(c.scalar(&c.service(service)["stop_signal"]), "SIGTERM");
        let grace = c.scalar(&c.service(service)["stop_grace_period"]);
        let grace_s: u64 = grace.trim_end_matches('s').parse().unwrap();
        assert!(
            grace_s * 1000 > cfg.server.shutdown_grace.as_millis() as u64,
            "{service}: stop_grace_period {grace}"
        );
    }
}

#[test]
fn nginx_renders_the_shared_template_completely() {
    let c = Compose::load();
    let template_path = c.mounted_file("nginx", "/etc/nginx/templates/nginx.conf.template");
    assert_eq!(template_path, repo().join("compose/nginx.conf.template"));
    let env = c.environment("nginx");
    // The image writes <templates>/X.template to $NGINX_ENVSUBST_OUTPUT_DIR/X.
    assert_eq!(env["NGINX_ENVSUBST_OUTPUT_DIR"], "/etc/nginx");
    let template = std::fs::read_to_string(&template_path).unwrap();
    let placeholders: Vec<&str> = template
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.split("${").skip(1))
        .filter_map(|s| s.split_once('}').map(|(name, _)| name))
        .collect();
    assert!(
        placeholders.contains(&"NGINX_UPSTREAM_SERVERS"),
        "{placeholders:?}"
    );
    for p in &placeholders {
        assert!(
            env.contains_key(*p),
            "template placeholder ${{{p}}} is not set for nginx"
        );
    }
    // Temp paths are relative to the prefix; compose provides the directory.
    assert!(template.contains("tmp/client_body"));
    assert_eq!(c.strings(&c.service("nginx")["tmpfs"]), ["/etc/nginx/tmp"]);
}

#[test]
fn dockerfile_and_build_context() {
    let c = Compose::load();
    for s in ["gateway", "gateway-cluster", "backend"] {
        let build = &c.service(s)["build"];
        assert_eq!(c.scalar(&build["context"]), "..", "{s}");
        assert!(repo()
            .join("compose")
            .join("..")
            .join(c.scalar(&build["dockerfile"]))
            .is_file());
    }
    let d = read("Dockerfile");
    let stages = d.lines().filter(|l| l.starts_with("FROM ")).count();
    assert!(stages >= 3, "multi-stage build, got {stages} stages");
    assert!(
        d.contains("cargo chef cook"),
        "dependencies are cached in their own layer"
    );
    let user = d
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("USER");
    assert!(
        !user.starts_with("root") && !user.starts_with('0'),
        "runs as {user}"
    );
    assert!(d.contains("STOPSIGNAL SIGTERM"));
    assert!(d.contains("ENTRYPOINT [\"rateguard\"]"));
    let ignore = read(".dockerignore");
    for must in ["target", ".git", "results"] {
        assert!(
            ignore.lines().any(|l| l.trim() == must),
            ".dockerignore lacks {must}"
        );
    }
    // Crates include the nginx template at compile time: it must stay in the context.
    assert!(ignore.contains("!compose/nginx.conf.template"));
    assert!(Path::new(&repo().join("compose/nginx.conf.template")).is_file());
}
