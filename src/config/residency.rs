//! The vocabulary of data residency shared by the config sections and the policy
//! engine: [`Scope`], a provider's declared [`Residency`] and the one rule for what a
//! jurisdiction may be spelled as ([`jurisdiction`]).
//!
//! It sits below `validate` (providers) and `access` (policies), and `policy` (the
//! `x-tollgate-residency` header) uses the same rule. It decides nothing about
//! whether a route complies: that is `policy`'s job.

/// Where an upstream processes prompts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Within the region's own geography.
    Regional,
    /// Within a multi-country data zone (e.g. Azure's EU or US data zone).
    Datazone,
    /// Anywhere the provider runs the model.
    Global,
}

impl Scope {
    /// Parse the config spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "regional" => Some(Scope::Regional),
            "datazone" => Some(Scope::Datazone),
            "global" => Some(Scope::Global),
            _ => None,
        }
    }

    /// The config and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Regional => "regional",
            Scope::Datazone => "datazone",
            Scope::Global => "global",
        }
    }
}

/// A provider entry's declared data residency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Residency {
    /// e.g. `azure:swedencentral`.
    pub region: String,
    /// `EU`, `US`, `CN`, `GLOBAL` or an ISO 3166 country code.
    pub jurisdiction: String,
    pub scope: Scope,
}

/// What a jurisdiction may be, for messages that refuse one.
pub const JURISDICTION_EXPECTED: &str = "EU, US, CN, GLOBAL or an ISO 3166 country code";

/// The canonical (upper-case, trimmed) spelling of a jurisdiction, or `None` when
/// `raw` is not one. A jurisdiction is a two-letter code (an ISO 3166 country or a
/// bloc such as `EU`) or `GLOBAL`; config files, keys' policies and the request
/// header all go through this one rule so that they can never disagree.
pub fn jurisdiction(raw: &str) -> Option<String> {
    let up = raw.trim().to_ascii_uppercase();
    let is_code = up.len() == 2 && up.bytes().all(|b| b.is_ascii_uppercase());
    (is_code || up == "GLOBAL").then_some(up)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jurisdiction_is_a_two_letter_code_or_global_in_any_case() {
        assert_eq!(jurisdiction(" eu ").as_deref(), Some("EU"));
        assert_eq!(jurisdiction("Global").as_deref(), Some("GLOBAL"));
        assert_eq!(jurisdiction("de").as_deref(), Some("DE"));
        for bad in ["", "E", "EUR", "E1", "global-ish", "ü1"] {
            assert_eq!(jurisdiction(bad), None, "{bad:?}");
        }
    }
}
