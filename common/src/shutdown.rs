//! Graceful shutdown: the future every `run(…, shutdown)` receives from `main`.

/// Resolves on SIGTERM or Ctrl-C.
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received");
}

/// Resolves once `rx` turns true (or its sender is gone): the shutdown future of a task that a
/// parent stops with `sender.send(true)`.
pub async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// What a supervised attempt asks for next (see [`supervise`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Run another attempt (after a short pause).
    Again,
    /// The work is done: stop.
    Stop,
}

/// First pause after a failed attempt; it doubles up to [`MAX_PAUSE`] while attempts keep
/// failing, and starts over after one succeeds.
pub const FIRST_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);
pub const MAX_PAUSE: std::time::Duration = std::time::Duration::from_secs(5);
/// An attempt that ran this long before failing counts as healthy (its pauses start over).
const HEALTHY: std::time::Duration = std::time::Duration::from_secs(30);

/// The one retry loop of every background stage: runs `attempt` until it says [`Next::Stop`] or
/// `shutdown` resolves (which also interrupts a running attempt). A failed attempt is logged
/// with `what` and retried after a pause growing from 200 ms to 5 s.
pub async fn supervise<F, Fut>(
    what: &str,
    shutdown: impl std::future::Future<Output = ()>,
    mut attempt: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Next>>,
{
    tokio::pin!(shutdown);
    let mut pause = FIRST_PAUSE;
    loop {
        let began = tokio::time::Instant::now();
        tokio::select! {
            _ = &mut shutdown => return,
            outcome = attempt() => match outcome {
                Ok(Next::Stop) => return,
                Ok(Next::Again) => pause = FIRST_PAUSE,
                Err(e) => {
                    tracing::warn!(error = %e, "{what} interrupted; retrying");
                    metrics::counter!("supervised_retries_total", "stage" => what.to_owned()).increment(1);
                    // An attempt that worked for a while before failing starts the pauses over.
                    if began.elapsed() >= HEALTHY {
                        pause = FIRST_PAUSE;
                    }
                }
            },
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_failing_attempt_is_retried_with_growing_pauses_until_it_stops() {
        let started = tokio::time::Instant::now();
        let mut runs = 0;
        supervise("test", std::future::pending(), || {
            runs += 1;
            let n = runs;
            async move {
                match n {
                    1..=4 => anyhow::bail!("down"),
                    _ => Ok(Next::Stop),
                }
            }
        })
        .await;
        assert_eq!(runs, 5);
        // 200 + 400 + 800 + 1600 ms of pauses.
        assert_eq!(started.elapsed(), std::time::Duration::from_millis(3000));
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_interrupts_a_running_attempt() {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let stop = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            let _ = tx.send(true);
        });
        supervise("test", stopped(rx), || async {
            std::future::pending::<()>().await;
            Ok(Next::Again)
        })
        .await;
        stop.await.unwrap();
    }
}
