//! Reading `compose/` the way Docker Compose does, as far as these checks
//! need: the `.env` file, `${VAR}` / `${VAR:-default}` interpolation with
//! `$$` escapes, YAML merge keys (`<<`), and service fields.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use yaml_rust2::yaml::Hash;
use yaml_rust2::{Yaml, YamlLoader};

/// The repository root.
pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A file under the repository root, as text.
pub(crate) fn read(rel: &str) -> String {
    let path = repo().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `KEY=VALUE` lines of a `.env` file (comments and blank lines skipped).
pub(crate) fn dotenv(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("bad .env line {l:?}"));
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect()
}

/// Compose interpolation: `$$` is a literal `$`; `${VAR}` must be set;
/// `${VAR:-default}` and `${VAR-default}` fall back to the default.
pub(crate) fn interpolate(s: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
            continue;
        }
        let body = rest
            .strip_prefix('{')
            .and_then(|r| r.split_once('}'))
            .unwrap_or_else(|| panic!("unsupported `$` in {s:?}: use ${{VAR}} or $$"));
        let (expr, after) = body;
        let (name, default) = match expr.split_once(":-").or_else(|| expr.split_once('-')) {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        let value = match (env.get(name).filter(|v| !v.is_empty()), default) {
            (Some(v), _) => v.clone(),
            (None, Some(d)) => d.to_owned(),
            (None, None) => {
                panic!("{name} is used in {s:?} but not set in .env and has no default")
            }
        };
        out.push_str(&value);
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Applies YAML merge keys (`<<: *anchor`) everywhere, as Compose does:
/// keys of the node itself win over merged ones.
pub(crate) fn merge_keys(y: Yaml) -> Yaml {
    match y {
        Yaml::Hash(h) => {
            let merge_key = Yaml::String("<<".into());
            let mut out = Hash::new();
            if let Some(base) = h.get(&merge_key) {
                let bases = match base.clone() {
                    Yaml::Array(a) => a,
                    other => vec![other],
                };
                for b in bases {
                    let Yaml::Hash(bh) = merge_keys(b) else {
                        panic!("`<<` must merge a mapping");
                    };
                    out.extend(bh);
                }
            }
            for (k, v) in h {
                if k != merge_key {
                    out.insert(k, merge_keys(v));
                }
            }
            Yaml::Hash(out)
        }
        Yaml::Array(a) => Yaml::Array(a.into_iter().map(merge_keys).collect()),
        other => other,
    }
}

/// The compose project: its parsed file and `.env`.
pub(crate) struct Compose {
    /// The whole file, merge keys applied.
    pub(crate) doc: Yaml,
    /// `compose/.env`.
    pub(crate) env: BTreeMap<String, String>,
}

impl Compose {
    /// Loads `compose/docker-compose.yml` and `compose/.env`.
    pub(crate) fn load() -> Self {
        let text = read("compose/docker-compose.yml");
        let mut docs = YamlLoader::load_from_str(&text).expect("docker-compose.yml is valid YAML");
        assert_eq!(docs.len(), 1, "one YAML document");
        Self {
            doc: merge_keys(docs.remove(0)),
            env: dotenv(&read("compose/.env")),
        }
    }

    /// Names of all services.
    pub(crate) fn service_names(&self) -> Vec<String> {
        let Yaml::Hash(h) = &self.doc["services"] else {
            panic!("no services");
        };
        h.keys()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect()
    }

    /// One service's mapping.
    pub(crate) fn service(&self, name: &str) -> &Yaml {
        let s = &self.doc["services"][name];
        assert!(!s.is_badvalue(), "service {name} is missing");
        s
    }

    /// A scalar interpolated with `.env` (numbers as their text).
    pub(crate) fn scalar(&self, y: &Yaml) -> String {
        let raw = match y {
            Yaml::String(s) | Yaml::Real(s) => s.clone(),
            Yaml::Integer(i) => i.to_string(),
            Yaml::Boolean(b) => b.to_string(),
            other => panic!("expected a scalar, got {other:?}"),
        };
        interpolate(&raw, &self.env)
    }

    /// A list of scalars (a missing key is an empty list), interpolated.
    pub(crate) fn strings(&self, y: &Yaml) -> Vec<String> {
        match y {
            Yaml::Array(a) => a.iter().map(|v| self.scalar(v)).collect(),
            Yaml::BadValue => Vec::new(),
            other => vec![self.scalar(other)],
        }
    }

    /// A service's `environment`, interpolated (map or `K=V` list form).
    pub(crate) fn environment(&self, service: &str) -> BTreeMap<String, String> {
        match &self.service(service)["environment"] {
            Yaml::Hash(h) => h
                .iter()
                .map(|(k, v)| (k.as_str().expect("env name").to_owned(), self.scalar(v)))
                .collect(),
            Yaml::Array(a) => a
                .iter()
                .map(|v| {
                    let kv = self.scalar(v);
                    let (k, v) = kv.split_once('=').expect("K=V");
                    (k.to_owned(), v.to_owned())
                })
                .collect(),
            Yaml::BadValue => BTreeMap::new(),
            other => panic!("{service}.environment: unexpected {other:?}"),
        }
    }

    /// A service's `profiles`.
    pub(crate) fn profiles(&self, service: &str) -> Vec<String> {
        self.strings(&self.service(service)["profiles"])
    }

    /// The file under `compose/` mounted at `target` in `service`.
    pub(crate) fn mounted_file(&self, service: &str, target: &str) -> PathBuf {
        self.strings(&self.service(service)["volumes"])
            .iter()
            .find_map(|v| {
                let mut parts = v.split(':');
                let (src, dst) = (parts.next()?, parts.next()?);
                (dst == target).then(|| repo().join("compose").join(src))
            })
            .unwrap_or_else(|| panic!("{service} mounts nothing at {target}"))
    }

    /// The value after `flag` in a service's `command`.
    pub(crate) fn command_arg(&self, service: &str, flag: &str) -> String {
        let cmd = self.strings(&self.service(service)["command"]);
        let i = cmd
            .iter()
            .position(|a| a == flag)
            .unwrap_or_else(|| panic!("{service} command {cmd:?} has no {flag}"));
        cmd[i + 1].clone()
    }
}

/// The port in the first `http://host:PORT/...` URL of `text`.
pub(crate) fn url_port(text: &str) -> u16 {
    let after = text.split("http://").nth(1).expect("an http:// URL");
    let hostport = after.split('/').next().unwrap();
    hostport
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .expect("a port")
}
