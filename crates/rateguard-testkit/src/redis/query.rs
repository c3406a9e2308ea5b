//! One Redis command through redis-rs, its reply as text the way
//! `redis-cli` prints it (nil as empty, arrays one item a line).

use std::time::Duration;

use redis::Value;

use crate::TestkitError;

/// How long one command may take, connect included (`WAIT 1 2000` fits).
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends `args` to the server on 127.0.0.1:`port` over a fresh connection
/// and returns the reply as trimmed text; an error reply is an error.
pub(crate) async fn command(port: u16, args: &[&str]) -> Result<String, TestkitError> {
    let fail = |detail: String| TestkitError::Query {
        what: format!("redis 127.0.0.1:{port} {}", args.join(" ")),
        detail,
    };
    let (name, rest) = args
        .split_first()
        .ok_or_else(|| TestkitError::Invalid("an empty Redis command".into()))?;
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .map_err(|e| fail(e.to_string()))?;
    let exchange = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd(name)
            .arg(rest)
            .query_async::<Value>(&mut conn)
            .await
    };
    let reply = tokio::time::timeout(QUERY_TIMEOUT, exchange)
        .await
        .map_err(|_| fail(format!("no reply within {QUERY_TIMEOUT:?}")))?
        .map_err(|e| fail(e.to_string()))?;
    Ok(text(reply).map_err(fail)?.trim().to_owned())
}

/// The reply as `redis-cli` (not on a terminal) prints it.
fn text(value: Value) -> Result<String, String> {
    Ok(match value {
        Value::Nil => String::new(),
        Value::Int(n) => n.to_string(),
        Value::BulkString(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Value::SimpleString(s) => s,
        Value::Okay => "OK".to_owned(),
        Value::Array(items) | Value::Set(items) => items
            .into_iter()
            .map(text)
            .collect::<Result<Vec<_>, _>>()?
            .join("\n"),
        Value::ServerError(e) => return Err(e.to_string()),
        other => format!("{other:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_read_like_redis_cli() {
        assert_eq!(text(Value::Nil).unwrap(), "");
        assert_eq!(text(Value::Int(-2)).unwrap(), "-2");
        assert_eq!(text(Value::Okay).unwrap(), "OK");
        let role = Value::Array(vec![
            Value::BulkString(b"slave".to_vec()),
            Value::BulkString(b"127.0.0.1".to_vec()),
            Value::Int(7000),
            Value::BulkString(b"connected".to_vec()),
        ]);
        assert_eq!(text(role).unwrap(), "slave\n127.0.0.1\n7000\nconnected");
    }
}
