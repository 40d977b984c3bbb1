//! `schedule=30:0.5,60:1`: a hidden capacity that changes while a client runs — from 30 s on,
//! half; from 60 s on, whole again — counted from the first request that uses it.

use super::reply::{Refusal, bad_request};

/// The most steps a schedule may have.
const MAX_STEPS: usize = 64;

/// Capacity factors by time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Schedule {
    /// (from this many seconds on, this factor), in time order.
    steps: Vec<(f64, f64)>,
}

impl Schedule {
    /// Parses `T:F,T:F,…` (seconds and factors; factors within 0.01..=100).
    pub fn parse(text: Option<&str>) -> Result<Schedule, Refusal> {
        let Some(text) = text.filter(|t| !t.is_empty()) else { return Ok(Schedule::default()) };
        let bad = || bad_request(format!("schedule {text:?}: expected SECONDS:FACTOR,… (e.g. 30:0.5,60:1)"));
        let mut steps = text
            .split(',')
            .map(|step| {
                let (t, f) = step.split_once(':').ok_or_else(bad)?;
                let (t, f) = (
                    t.trim().parse::<f64>().map_err(|_| bad())?,
                    f.trim().parse::<f64>().map_err(|_| bad())?,
                );
                if !(t.is_finite() && t >= 0.0 && (0.01..=100.0).contains(&f)) {
                    return Err(bad());
                }
                Ok((t, f))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if steps.len() > MAX_STEPS {
            return Err(bad_request(format!("schedule: at most {MAX_STEPS} steps")));
        }
        steps.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(Schedule { steps })
    }

    /// The capacity factor `elapsed` seconds after the start.
    pub fn factor(&self, elapsed: f64) -> f64 {
        self.steps.iter().take_while(|(t, _)| elapsed >= *t).last().map_or(1.0, |(_, f)| *f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_steps_capacity_over_time() {
        let s = Schedule::parse(Some("60:1, 30:0.5")).unwrap();
        assert_eq!((s.factor(0.0), s.factor(30.0), s.factor(59.9), s.factor(61.0)), (1.0, 0.5, 0.5, 1.0));
        assert_eq!(Schedule::parse(None).unwrap().factor(5.0), 1.0);
        for bad in ["30", "x:1", "30:0", "-1:1", "30:1000"] {
            assert!(Schedule::parse(Some(bad)).is_err(), "{bad}");
        }
    }
}
