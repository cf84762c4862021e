//! Retention periods: how long what is kept lives. The janitor enforces them; the api states
//! them on `/privacy` and `/terms`. Each has a floor and a ceiling; outside them a service
//! refuses to start, saying which and why.

/// Retention periods, each within its floor and ceiling (the janitor refuses to start outside).
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct RetentionConfig {
    /// Days an uploaded recording is kept after its task ended (completed or failed); the
    /// result is kept. 1 to 3650.
    #[arg(
        long = "recording-retention-days",
        env = "RECORDING_RETENTION_DAYS",
        default_value_t = 30
    )]
    pub recording_days: i64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig { recording_days: 30 }
    }
}

/// (floor, ceiling) of RECORDING_RETENTION_DAYS.
pub const RECORDING_DAYS: (i64, i64) = (1, 3650);

impl RetentionConfig {
    /// Refuses a period outside its bounds, saying which and why.
    pub fn check(&self) -> anyhow::Result<()> {
        let (floor, ceiling) = RECORDING_DAYS;
        if !(floor..=ceiling).contains(&self.recording_days) {
            anyhow::bail!(
                "RECORDING_RETENTION_DAYS={} is outside {floor}..={ceiling}: a recording must live \
                 at least a day (the call-check page plays it) and at most ten years",
                self.recording_days
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_outside_their_bounds_are_refused_with_the_reason() {
        assert!(RetentionConfig::default().check().is_ok());
        for days in [0, -3, 3651] {
            let err = RetentionConfig {
                recording_days: days,
            }
            .check()
            .unwrap_err()
            .to_string();
            assert!(err.contains("RECORDING_RETENTION_DAYS"), "{err}");
        }
    }
}
