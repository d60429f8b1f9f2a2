//! Deadlines that may be absent: a session without `disconnectAfterInSeconds`, a worker between jobs.

/// Sleeps until `at`; never wakes without one.
pub(crate) async fn until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
