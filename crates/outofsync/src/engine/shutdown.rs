//! [`Shutdown`]: how a run is stopped from outside (a signal, a user, a test) in two steps — stop
//! taking new inputs, then cancel the requests still in flight.
//!
//! Two tokens, the second a child of the first: cancelling in-flight work always stops the input
//! too, while stopping the input leaves requests already started to finish and deliver their
//! records. A cancelled request delivers nothing, which is what makes a later `--resume` fetch it.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// A handle that stops a run; clones share the same state.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use outofsync::engine::Shutdown;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let shutdown = Shutdown::new();
/// // On SIGTERM: no new input now; requests in flight get 10 s, then are cancelled.
/// shutdown.begin(Duration::from_secs(10));
/// assert!(shutdown.is_stopping());
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct Shutdown {
    cancel: CancellationToken,
    stop: CancellationToken,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A handle that has not been triggered.
    pub fn new() -> Self {
        let cancel = CancellationToken::new();
        let stop = cancel.child_token();
        Shutdown { cancel, stop }
    }

    /// Takes no new input; requests already started run to their end and deliver their records.
    pub fn stop_input(&self) {
        self.stop.cancel();
    }

    /// Takes no new input and cancels the requests in flight: they deliver no record.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Stops the input now and cancels what is still in flight after `grace`.
    ///
    /// Must be called within a tokio runtime (the grace period is a task of its own).
    pub fn begin(&self, grace: Duration) {
        self.stop_input();
        let cancel = self.cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(grace) => cancel.cancel(),
                // Cancelled by other means first: nothing left to wait for.
                () = cancel.cancelled() => {}
            }
        });
    }

    /// Whether the input was stopped (by any of the methods above).
    pub fn is_stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Whether requests in flight were cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Resolves once the input is stopped.
    pub async fn input_stopped(&self) {
        self.stop.cancelled().await;
    }

    /// Resolves once in-flight requests are cancelled.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await;
    }
}
