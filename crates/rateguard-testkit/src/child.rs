//! [`ChildGuard`]: one spawned process, signalled and stopped by its own pid.

use std::io;
use std::process::Child;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How often [`ChildGuard::wait_exit`] checks whether the child is gone.
const EXIT_POLL: Duration = Duration::from_millis(10);

/// Owns a child process; kills it (SIGKILL, by its pid) and reaps it on drop.
///
/// Signals go to the pid of a child that has not been reaped yet, so they
/// can never reach an unrelated process that reused the pid.
#[derive(Debug)]
pub struct ChildGuard {
    child: Child,
    reaped: bool,
}

impl ChildGuard {
    /// Guards `child`.
    pub fn new(child: Child) -> Self {
        Self {
            child,
            reaped: false,
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the child is still running (reaps it if it has exited). A
    /// stopped (SIGSTOP) child counts as running.
    pub fn is_running(&mut self) -> bool {
        if self.reaped {
            return false;
        }
        match self.child.try_wait() {
            Ok(None) => true,
            _ => {
                self.reaped = true;
                false
            }
        }
    }

    /// Sends `signal` to the child by its pid; an error if it has exited.
    pub fn signal(&mut self, signal: Signal) -> io::Result<()> {
        if !self.is_running() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("process {} has exited; not sending {signal}", self.pid()),
            ));
        }
        let pid = i32::try_from(self.pid()).map_err(io::Error::other)?;
        kill(Pid::from_raw(pid), signal).map_err(io::Error::from)
    }

    /// Waits up to `timeout` for the child to exit; whether it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if !self.is_running() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(EXIT_POLL);
        }
    }

    /// Sends `signal`, waits up to `timeout` for the child to exit, then
    /// kills it if it has not; returns whether it exited by itself.
    pub fn stop_with(&mut self, signal: Signal, timeout: Duration) -> bool {
        if !self.is_running() {
            return true;
        }
        let exited = self.signal(signal).is_ok() && self.wait_exit(timeout);
        let _ = self.kill();
        exited
    }

    /// SIGTERM, then SIGKILL after `timeout`: [`stop_with`](Self::stop_with).
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        self.stop_with(Signal::SIGTERM, timeout)
    }

    /// Sends SIGKILL to the child and waits for it to exit. Idempotent.
    pub fn kill(&mut self) -> io::Result<()> {
        if self.reaped {
            return Ok(());
        }
        // Fails only if it already exited; `wait` reaps it either way.
        let _ = self.child.kill();
        self.child.wait()?;
        self.reaped = true;
        Ok(())
    }

    /// The guarded child, e.g. to take its stdout.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn spawn(script: &str) -> ChildGuard {
        ChildGuard::new(Command::new("sh").args(["-c", script]).spawn().unwrap())
    }

    #[test]
    fn sigterm_stops_a_child_that_obeys_it() {
        let mut child = spawn("exec sleep 30");
        assert!(child.is_running());
        assert!(
            child.terminate(Duration::from_secs(10)),
            "exited on SIGTERM"
        );
        assert!(!child.is_running());
        let err = child.signal(Signal::SIGCONT).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    }

    #[test]
    fn a_child_ignoring_sigterm_is_killed_after_the_timeout() {
        // An ignored signal stays ignored across `exec`; wait for the trap.
        let mut child = ChildGuard::new(
            Command::new("sh")
                .args(["-c", "trap '' TERM; echo trapped; exec sleep 30"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let stdout = child.child_mut().stdout.take().unwrap();
        let mut line = String::new();
        io::BufRead::read_line(&mut io::BufReader::new(stdout), &mut line).unwrap();
        assert_eq!(line, "trapped\n");
        let started = Instant::now();
        assert!(
            !child.terminate(Duration::from_millis(200)),
            "ignored SIGTERM"
        );
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(!child.is_running(), "killed");
    }

    #[test]
    fn a_stopped_child_still_runs_and_drop_kills_it() {
        let mut child = spawn("exec sleep 30");
        child.signal(Signal::SIGSTOP).unwrap();
        assert!(child.is_running());
        assert!(!child.wait_exit(Duration::from_millis(50)));
        let pid = child.pid();
        drop(child);
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
}
