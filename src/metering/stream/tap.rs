//! The metering tap of a streamed answer: it sees the stream only as neutral
//! [`Metered`] events (text, reasoning, a usage report), whatever the dialect, so two
//! dialects cannot be metered differently. It settles usage once, prices it once (for
//! the `tollgate` object a relay writes into the last event, and for the record alike)
//! and writes the one ledger record.

use std::time::Duration;

use tokio::time::Instant;

use crate::ledger::{Outcome, UsageSource};
use crate::metering::audit::VisibleOutput;
use crate::metering::facts::{self, RequestFacts};
use crate::metering::finalize::{Ending, Meter};
use crate::metering::summary::{self, Summary};
use crate::providers::ProviderAdapter;
use crate::tokens::estimate::{OutputTokenCounter, TokenizerKind};
use crate::tokens::Usage;

/// What a dialect's relay tells the meter about one event.
#[derive(Debug, Clone, Copy)]
pub enum Metered<'a> {
    /// Visible output text.
    Text(&'a str),
    /// Reasoning text the upstream showed (DeepSeek's `reasoning_content`, Claude's
    /// thinking).
    Reasoning(&'a str),
    /// A usage report, already in tollgate's terms. Reports are merged field by field
    /// (largest value), which is right for one final report and for cumulative ones.
    Usage(Usage),
}

/// Everything the meter needs besides the events.
pub struct TapSetup {
    pub meter: Meter,
    pub facts: RequestFacts,
    /// Reads the upstream's usage objects (per provider kind: DeepSeek's cache fields).
    pub adapter: &'static dyn ProviderAdapter,
    pub ttfb: Duration,
    /// When the answering attempt was sent; the upstream's time runs to its last byte.
    pub upstream_started: Instant,
}

/// See the module docs.
pub struct Tap {
    usage: Usage,
    output: OutputTokenCounter,
    /// Usage settled once, for the `tollgate` object and the record alike.
    settled: Option<(Usage, UsageSource)>,
    /// Set when the upstream's stream ended (or broke): the end of the upstream's time.
    upstream_ended: Option<Instant>,
    /// `None` once the record is written.
    setup: Option<TapSetup>,
}

impl Tap {
    pub fn new(setup: TapSetup) -> Self {
        let tokenizer = setup
            .facts
            .served
            .as_ref()
            .map_or(TokenizerKind::O200kBase, |s| s.tokenizer);
        Self {
            usage: Usage::default(),
            output: OutputTokenCounter::new(tokenizer),
            settled: None,
            upstream_ended: None,
            setup: Some(setup),
        }
    }

    /// Take in one event.
    pub fn observe(&mut self, event: Metered<'_>) {
        match event {
            Metered::Text(text) => self.output.push(text),
            Metered::Reasoning(text) => self.output.push_reasoning(text),
            Metered::Usage(u) => self.usage.merge_max(&u),
        }
    }

    /// The serving provider's reader of usage objects; `None` once finished.
    pub fn adapter(&self) -> Option<&'static dyn ProviderAdapter> {
        self.setup.as_ref().map(|s| s.adapter)
    }

    /// The request's id (for error events); empty once finished.
    pub fn request_id(&self) -> &str {
        self.setup
            .as_ref()
            .map_or("", |s| s.facts.request_id.as_str())
    }

    /// What the upstream reported so far, merged.
    pub fn reported_usage(&self) -> Usage {
        self.usage
    }

    /// Whether the upstream reported both totals billing needs.
    pub fn has_complete_usage(&self) -> bool {
        self.usage.is_complete()
    }

    /// Whether the record is written (the stream is over for the meter).
    pub fn is_finished(&self) -> bool {
        self.setup.is_none()
    }

    /// Note that the upstream's stream ended (or broke) now.
    pub fn upstream_ended(&mut self) {
        self.upstream_ended.get_or_insert_with(Instant::now);
    }

    /// The `tollgate` object, priced from usage settled now (and for good): what the
    /// last event of a stream carries. `None` once finished.
    pub fn with_summary(&mut self, write: impl FnOnce(&Summary<'_>)) {
        let Some((usage, source)) = self.settle() else {
            return;
        };
        let Some(setup) = &self.setup else { return };
        let priced = facts::price(&setup.meter.prices, &setup.facts, usage, source);
        write(&summary::summary(&setup.facts, &priced));
    }

    /// Settle usage once; later calls return the same answer.
    fn settle(&mut self) -> Option<(Usage, UsageSource)> {
        if self.settled.is_none() {
            let setup = self.setup.as_ref()?;
            self.settled = Some(Meter::settle(
                &setup.facts,
                self.usage,
                Some(&mut self.output),
            ));
        }
        self.settled
    }

    /// Write the record, once; later calls do nothing.
    pub fn finish(&mut self, outcome: Outcome, error_code: Option<&'static str>) {
        let Some((usage, source)) = self.settle() else {
            return;
        };
        let Some(setup) = self.setup.take() else {
            return;
        };
        let priced = facts::price(&setup.meter.prices, &setup.facts, usage, source);
        let ending = Ending {
            status: 200,
            outcome,
            error_code,
            ttfb: Some(setup.ttfb),
            upstream_time: self
                .upstream_ended
                .map(|end| end.saturating_duration_since(setup.upstream_started)),
        };
        let visible = VisibleOutput::take(&mut self.output);
        setup
            .meter
            .finish_with(&setup.facts, &priced, &ending, Some(visible));
    }
}
