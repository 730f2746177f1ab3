//! Fault rules from a YAML (or JSON) file, as `capi-testkit serve --faults FILE` takes them:
//!
//! ```yaml
//! # The first two creates of configmaps in ns1 get a 500.
//! - verb: create          # an HTTP method or a Kubernetes verb (watch, list, create...)
//!   resource: configmaps  # plural; `devmachines/status` for a subresource
//!   namespace: ns1
//!   times: 2              # omitted: forever
//!   status: 500
//! - resource: leases
//!   latencyMs: 300
//! - resource: configmaps  # every watch of configmaps drops after 3 events
//!   cutWatch: {afterEvents: 3}
//! - cutWatch: {afterMs: 2000}
//!   name: my-object       # by URL or by a metadata.name field selector
//! - expireWatch: true     # the next resumed watch gets 410 Expired
//!   times: 1
//! - pathContains: /devmachines/
//!   verb: PATCH
//!   status: 409
//! ```
//!
//! Each rule has exactly one of `status`, `latencyMs`, `cutWatch` and `expireWatch`.

use std::time::Duration;

use serde::Deserialize;

use super::{Cut, Fault, FaultRule};

/// Why a fault file was refused.
#[derive(Debug, thiserror::Error)]
pub enum FaultFileError {
    /// Not YAML or JSON of the expected shape.
    #[error("fault rules: {0}")]
    Syntax(String),
    /// A rule that does not say what to do, or says it twice.
    #[error("fault rule {index}: {message}")]
    Rule {
        /// The rule's position in the list, from 0.
        index: usize,
        /// What is wrong.
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RuleSpec {
    verb: Option<String>,
    resource: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    path_contains: Option<String>,
    times: Option<u32>,
    status: Option<u16>,
    latency_ms: Option<u64>,
    cut_watch: Option<CutSpec>,
    expire_watch: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CutSpec {
    after_events: Option<u32>,
    after_ms: Option<u64>,
}

fn fault(spec: &RuleSpec) -> Result<Fault, String> {
    let mut faults = Vec::new();
    if let Some(code) = spec.status {
        if !(400..600).contains(&code) {
            return Err(format!("status {code} is not an error code (400-599)"));
        }
        faults.push(Fault::Status(code));
    }
    if let Some(ms) = spec.latency_ms {
        faults.push(Fault::Latency(Duration::from_millis(ms)));
    }
    if let Some(c) = &spec.cut_watch {
        faults.push(Fault::CutWatch(match (c.after_events, c.after_ms) {
            (Some(n), None) => Cut::AfterEvents(n),
            (None, Some(ms)) => Cut::After(Duration::from_millis(ms)),
            _ => return Err("cutWatch needs exactly one of afterEvents and afterMs".into()),
        }));
    }
    if spec.expire_watch == Some(true) {
        faults.push(Fault::ExpireWatch);
    }
    match faults.len() {
        1 => Ok(faults.remove(0)),
        0 => Err("needs one of status, latencyMs, cutWatch, expireWatch: true".into()),
        _ => Err("has more than one of status, latencyMs, cutWatch, expireWatch".into()),
    }
}

/// Parses a list of fault rules (YAML or JSON, format above).
pub fn parse_rules(text: &str) -> Result<Vec<FaultRule>, FaultFileError> {
    let specs: Vec<RuleSpec> = if text.trim().is_empty() {
        Vec::new()
    } else {
        serde_saphyr::from_str(text).map_err(|e| FaultFileError::Syntax(e.to_string()))?
    };
    specs
        .into_iter()
        .enumerate()
        .map(|(index, spec)| {
            let f = fault(&spec).map_err(|message| FaultFileError::Rule { index, message })?;
            let mut rule = FaultRule::new(f);
            rule.verb = spec.verb.map(|v| v.to_uppercase());
            rule.resource = spec.resource;
            rule.namespace = spec.namespace;
            rule.name = spec.name;
            rule.path_contains = spec.path_contains;
            rule.remaining = spec.times;
            Ok(rule)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let text = "- verb: create\n  resource: configmaps\n  namespace: ns1\n  times: 2\n  status: 500\n- resource: leases\n  latencyMs: 300\n- resource: configmaps\n  cutWatch: {afterEvents: 3}\n- cutWatch: {afterMs: 2000}\n  name: my-object\n- expireWatch: true\n  times: 1\n";
        let rules = parse_rules(text).unwrap_or_default();
        assert_eq!(rules.len(), 5);
        assert_eq!(rules[0].verb.as_deref(), Some("CREATE"));
        assert_eq!(rules[0].remaining, Some(2));
        assert_eq!(rules[1].fault, Fault::Latency(Duration::from_millis(300)));
        assert_eq!(rules[2].fault, Fault::CutWatch(Cut::AfterEvents(3)));
        assert_eq!(
            rules[3].fault,
            Fault::CutWatch(Cut::After(Duration::from_secs(2)))
        );
        assert_eq!(rules[4].fault, Fault::ExpireWatch);
        assert!(parse_rules("[{\"status\": 429}]").is_ok_and(|r| r.len() == 1));
        assert!(parse_rules("").is_ok_and(|r| r.is_empty()));
    }

    #[test]
    fn rules_saying_nothing_or_too_much_are_refused() {
        assert!(matches!(
            parse_rules("- resource: x\n"),
            Err(FaultFileError::Rule { index: 0, .. })
        ));
        assert!(matches!(
            parse_rules("- status: 500\n- status: 409\n  latencyMs: 1\n"),
            Err(FaultFileError::Rule { index: 1, .. })
        ));
        assert!(matches!(
            parse_rules("- status: 200\n"),
            Err(FaultFileError::Rule { .. })
        ));
        assert!(matches!(
            parse_rules("- cutWatch: {}\n"),
            Err(FaultFileError::Rule { .. })
        ));
        assert!(matches!(
            parse_rules("- stauts: 500\n"),
            Err(FaultFileError::Syntax(_))
        ));
    }
}
