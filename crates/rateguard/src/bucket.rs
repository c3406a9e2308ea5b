//! `rateguard bucket show|reset`: one `GET`/`DELETE /buckets` call to a
//! replica's admin API, its JSON answer printed on stdout.

use std::io::BufRead;

use anyhow::{bail, Context};
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rateguard_runtime::admin::{AdminToken, TOKEN_ENV};

use crate::cli::{BucketAction, BucketArgs};

/// Runs one `rateguard bucket` command.
pub(crate) fn run(action: BucketAction) -> anyhow::Result<()> {
    let (method, args) = match action {
        BucketAction::Show(args) => (Method::GET, args),
        BucketAction::Reset(args) => (Method::DELETE, args),
    };
    let token = token(&args)?;
    let uri = uri(&args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (status, body) = runtime.block_on(call(method, &uri, &token))?;
    let shown = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    if !status.is_success() {
        bail!("{} answered {status}: {shown}", args.admin);
    }
    println!("{shown}");
    Ok(())
}

/// The token from `--token-file`, else `RATEGUARD_ADMIN_TOKEN`.
fn token(args: &BucketArgs) -> anyhow::Result<String> {
    let text = match &args.token_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        None => std::env::var(TOKEN_ENV)
            .with_context(|| format!("no token: give --token-file or set {TOKEN_ENV}"))?,
    };
    if AdminToken::new(&text).is_none() {
        bail!("the admin token is empty");
    }
    Ok(text.trim().to_owned())
}

/// `<admin>/buckets?policy=…&limit=…&key=…`, the values URL-encoded.
fn uri(args: &BucketArgs) -> anyhow::Result<String> {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("policy", &args.policy);
    if let Some(limit) = &args.limit {
        query.append_pair("limit", limit);
    }
    if args.key_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        query.append_pair("key", line.trim());
    } else if let Some(key) = &args.key {
        query.append_pair("key", key);
    } else if let Some(ip) = &args.ip {
        query.append_pair("ip", ip);
    } else if let Some(header) = &args.header {
        query.append_pair("header", header);
    }
    let base = args.admin.trim_end_matches('/');
    if !base.starts_with("http://") {
        bail!("--admin must be an http:// URL, got {base:?}");
    }
    Ok(format!("{base}/buckets?{}", query.finish()))
}

async fn call(method: Method, uri: &str, token: &str) -> anyhow::Result<(http::StatusCode, Bytes)> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Empty::new())?;
    let call = async {
        let res = client.request(req).await?;
        let status = res.status();
        let body = res.into_body().collect().await?.to_bytes();
        anyhow::Ok((status, body))
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), call)
        .await
        .context("no answer within 10 s")?
        .context("admin API call failed")
}
