//! `[metering]`: how often tollgate's own token count audits provider-reported usage, and
//! how many audits may wait for the audit thread. Checked here; used by `metering::audit`.

use serde::Deserialize;

/// `[metering]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawMetering {
    /// Fraction of requests with provider-reported usage whose prompt and output tollgate
    /// counts itself (drift audit), 0.0 to 1.0.
    pub audit_sample_rate: f64,
    /// Audits that may wait for the audit thread; more are dropped and counted.
    pub audit_queue: usize,
}

impl Default for RawMetering {
    fn default() -> Self {
        let s = MeteringSettings::default();
        Self {
            audit_sample_rate: s.audit_sample_rate,
            audit_queue: s.audit_queue,
        }
    }
}

/// `[metering]`, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeteringSettings {
    /// In [0, 1]: 0 audits only requests without provider usage, 1 audits every request.
    pub audit_sample_rate: f64,
    /// At least 1.
    pub audit_queue: usize,
}

impl Default for MeteringSettings {
    fn default() -> Self {
        Self {
            // One request in 20: enough for a drift ratio per provider within minutes at
            // modest traffic, at a twentieth of the counting cost.
            audit_sample_rate: 0.05,
            audit_queue: 1024,
        }
    }
}

/// Check `[metering]`; problems go to `push` (dotted path, message).
pub fn metering(raw: &RawMetering, push: &mut dyn FnMut(String, String)) -> MeteringSettings {
    let rate = raw.audit_sample_rate;
    if !(0.0..=1.0).contains(&rate) {
        push(
            "metering.audit_sample_rate".into(),
            format!("{rate} is out of range; expected a fraction from 0.0 (only requests without provider usage) to 1.0 (every request), e.g. 0.05"),
        );
    }
    if raw.audit_queue == 0 {
        push(
            "metering.audit_queue".into(),
            "must be at least 1, e.g. 1024".into(),
        );
    }
    MeteringSettings {
        audit_sample_rate: if rate.is_nan() {
            0.0
        } else {
            rate.clamp(0.0, 1.0)
        },
        audit_queue: raw.audit_queue.max(1),
    }
}
