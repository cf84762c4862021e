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

/// The future a stage of [`Stages`] watches: it resolves when the stages are stopped.
pub type Stopping = tokio_util::sync::WaitForCancellationFutureOwned;

/// The background stages of a process, under one cancellation token: every stage gets a
/// [`Stopping`] future from it, and [`Stages::stop`] cancels them all and waits for each to
/// finish its current step.
#[derive(Clone, Default)]
pub struct Stages {
    cancel: tokio_util::sync::CancellationToken,
    tracker: tokio_util::task::TaskTracker,
}

impl Stages {
    pub fn new() -> Stages {
        Stages::default()
    }

    /// A future that resolves once [`Stages::stop`] is called.
    pub fn stopping(&self) -> Stopping {
        self.cancel.clone().cancelled_owned()
    }

    /// Starts `stage`, handing it the future that tells it to stop.
    pub fn spawn<F, Fut>(&self, stage: F)
    where
        F: FnOnce(Stopping) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(stage(self.stopping()));
    }

    /// How many stages are still running.
    pub fn running(&self) -> usize {
        self.tracker.len()
    }

    /// Tells every stage to stop and waits up to `grace` for all of them. `false`: some were
    /// still running when the grace ran out (they are left to the runtime's shutdown).
    pub async fn stop(&self, grace: std::time::Duration) -> bool {
        self.cancel.cancel();
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }
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

    /// Stopping reaches every stage, and `stop` returns once each has finished its step.
    #[tokio::test(start_paused = true)]
    async fn stopping_the_stages_waits_for_each_to_finish() {
        let stages = Stages::new();
        let finished = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for tidy_up in [1u64, 3] {
            let finished = finished.clone();
            stages.spawn(move |stop| async move {
                stop.await;
                tokio::time::sleep(std::time::Duration::from_secs(tidy_up)).await;
                finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
        assert_eq!(stages.running(), 2);
        assert!(stages.stop(std::time::Duration::from_secs(10)).await);
        assert_eq!(finished.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(stages.running(), 0);
    }

    /// A stage that ignores the stop is given up on after the grace.
    #[tokio::test(start_paused = true)]
    async fn a_stage_that_will_not_stop_is_given_up_on_after_the_grace() {
        let stages = Stages::new();
        stages.spawn(|_stop| std::future::pending::<()>());
        assert!(!stages.stop(std::time::Duration::from_secs(2)).await);
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
