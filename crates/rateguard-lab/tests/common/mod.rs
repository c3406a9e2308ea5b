//! Helpers shared by the lab's integration tests.

use std::path::PathBuf;
use std::process::Command;

/// `target/<profile>/rateguard`, next to this package's own binary; built
/// with cargo if this run has not built it yet (`cargo test --workspace`
/// normally has).
pub(crate) fn gateway_bin() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_rateguard-lab")).with_file_name("rateguard");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "rateguard", "--bin", "rateguard"])
            .status()
            .expect("run cargo build -p rateguard");
        assert!(status.success(), "cargo build -p rateguard failed");
    }
    assert!(bin.exists(), "{} missing", bin.display());
    bin
}
