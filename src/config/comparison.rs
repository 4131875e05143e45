//! `[comparison]`: groups of logical models whose offers are compared with each other
//! (e.g. `reasoning = ["deepseek-r1", "o1", "o3-mini"]`), and their validation.
//!
//! It only shapes and checks the groups; pricing the offers of a group is
//! `pricing::compare`, recording the comparison is `metering::audit`.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `[comparison]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawComparison {
    /// Group name -> logical model names.
    pub groups: BTreeMap<String, Vec<String>>,
}

/// A validated comparison group: every member is a configured logical model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComparisonGroup {
    /// The group's name, as configured.
    pub name: String,
    /// Member logical models, in configured order.
    pub models: Vec<String>,
}

/// Check every group names only configured models; `push(path, message)` collects problems.
pub fn groups(
    raw: &RawComparison,
    model_names: &[&str],
    push: &mut dyn FnMut(String, String),
) -> Vec<ComparisonGroup> {
    let mut out = Vec::with_capacity(raw.groups.len());
    for (name, models) in &raw.groups {
        let path = format!("comparison.groups.{name}");
        if models.is_empty() {
            push(path.clone(), "empty group; name at least one model".into());
        }
        for (i, m) in models.iter().enumerate() {
            if !model_names.contains(&m.as_str()) {
                let mut known = model_names.to_vec();
                known.sort_unstable();
                push(
                    format!("{path}[{i}]"),
                    format!("unknown model {m:?}; expected one of: {}", known.join(", ")),
                );
            }
        }
        out.push(ComparisonGroup {
            name: name.clone(),
            models: models.clone(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_member_is_reported_with_its_path() {
        let raw = RawComparison {
            groups: BTreeMap::from([("r".to_owned(), vec!["o1".to_owned(), "nope".to_owned()])]),
        };
        let mut problems = Vec::new();
        let g = groups(&raw, &["o1", "deepseek-r1"], &mut |p, m| {
            problems.push(format!("{p}: {m}"))
        });
        assert_eq!(g.len(), 1);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("comparison.groups.r[1]: unknown model \"nope\""));
    }
}
