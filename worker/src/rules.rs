//! Explainable scam indicators: weighted, editable rules over the transcript.
//!
//! Rules live in `worker/rules.json` (compiled in) or in the file named by
//! `ANALYZER_RULES_FILE`; each rule has a kind, a weight and case-insensitive patterns. A match
//! yields an indicator whose evidence is the words that matched.

use regex::{Regex, RegexBuilder};
use serde::Deserialize;

use events::task::Indicator;

pub const DEFAULT_RULES: &str = include_str!("../rules.json");

#[derive(Debug, Deserialize)]
struct RuleFile {
    name: String,
    version: String,
    rules: Vec<RuleDef>,
}

#[derive(Debug, Deserialize)]
struct RuleDef {
    kind: String,
    weight: f64,
    patterns: Vec<String>,
}

pub struct Rules {
    pub name: String,
    pub version: String,
    rules: Vec<(String, f64, Vec<Regex>)>,
}

impl Rules {
    pub fn parse(json: &str) -> anyhow::Result<Rules> {
        let file: RuleFile = serde_json::from_str(json)?;
        let mut rules = Vec::new();
        for r in file.rules {
            anyhow::ensure!(
                (0.0..=1.0).contains(&r.weight),
                "rule {}: weight must be within 0..1",
                r.kind
            );
            let patterns = r
                .patterns
                .iter()
                .map(|p| {
                    RegexBuilder::new(p)
                        .case_insensitive(true)
                        .size_limit(1 << 20)
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow::anyhow!("rule {}: {e}", r.kind))?;
            rules.push((r.kind, r.weight, patterns));
        }
        Ok(Rules {
            name: file.name,
            version: file.version,
            rules,
        })
    }

    /// Every rule that matches, with the distinct matched words as evidence.
    pub fn indicators(&self, transcript: &str) -> Vec<Indicator> {
        let mut out = Vec::new();
        for (kind, weight, patterns) in &self.rules {
            let mut found: Vec<String> = Vec::new();
            for p in patterns {
                for m in p.find_iter(transcript) {
                    let words = m.as_str().to_string();
                    if !found.iter().any(|f| f.eq_ignore_ascii_case(&words)) {
                        found.push(words);
                    }
                }
            }
            if !found.is_empty() {
                out.push(Indicator {
                    kind: kind.clone(),
                    evidence: found.join(", "),
                    weight: *weight,
                });
            }
        }
        out
    }
}

/// Combined risk of independent indicators: 1 − Π(1 − weight).
pub fn risk_score(indicators: &[Indicator]) -> f64 {
    let keep = indicators
        .iter()
        .fold(1.0, |acc, i| acc * (1.0 - i.weight.clamp(0.0, 1.0)));
    ((1.0 - keep) * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_rules_explain_a_classic_scam() {
        let rules = Rules::parse(DEFAULT_RULES).unwrap();
        let t =
            "This is the IRS. You will be arrested today unless you pay with Google Play cards. \\
                 Read me the verification code and don't tell anyone.";
        let found = rules.indicators(t);
        let kinds: Vec<&str> = found.iter().map(|i| i.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "authority_impersonation",
                "gift_card_payment",
                "urgency_or_threat",
                "credential_request",
                "secrecy_demand"
            ]
        );
        let gift = found
            .iter()
            .find(|i| i.kind == "gift_card_payment")
            .unwrap();
        assert!(
            gift.evidence.contains("Google Play cards"),
            "{}",
            gift.evidence
        );
        assert!(risk_score(&found) > 0.9);
    }

    #[test]
    fn an_ordinary_call_has_no_indicators() {
        let rules = Rules::parse(DEFAULT_RULES).unwrap();
        assert!(rules
            .indicators("Hi mum, I'll be home for dinner at seven.")
            .is_empty());
        assert_eq!(risk_score(&[]), 0.0);
    }

    #[test]
    fn bad_rule_files_are_refused() {
        assert!(Rules::parse(
            r#"{"name":"x","version":"1","rules":[{"kind":"k","weight":2,"patterns":["a"]}]}"#
        )
        .is_err());
        assert!(Rules::parse(
            r#"{"name":"x","version":"1","rules":[{"kind":"k","weight":0.5,"patterns":["("]}]}"#
        )
        .is_err());
    }
}
