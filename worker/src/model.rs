//! A small learned check beside the rules: logistic regression over the stems (and stem pairs)
//! of a transcript, trained on the labelled transcripts the project keeps (`make train-model`,
//! `worker train-model`), shipped as `worker/rules/<lang>.model.json`.
//!
//! It catches scam *language* the phrasings miss; it never decides alone. Its score becomes an
//! indicator (`scam_language`) whose evidence is the words that weighed most, with the time they
//! were said, and whose weight grows with its confidence; the rules' counter-evidence still
//! applies to it.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use events::task::{Indicator, Span};

/// The model file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Model {
    pub language: String,
    pub version: String,
    pub bias: f64,
    /// The probability from which the check speaks (an indicator); chosen by cross-validation
    /// on written calls, never on the held-out split.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// Feature (a stem, or two stems joined by a space) → weight.
    pub weights: BTreeMap<String, f64>,
}

/// A word as the model sees it: its stem and where it was said.
pub struct Token<'a> {
    pub stem: &'a str,
    pub raw: &'a str,
    pub start: f64,
    pub end: f64,
}

/// Words too common to carry meaning (after stemming).
const STOP: &[&str] = &[
    "the", "a", "an", "and", "or", "to", "of", "in", "on", "at", "for", "is", "it", "that", "this",
    "i", "you", "we", "be", "are", "was", "so", "uh", "um", "just", "with", "your", "my", "me",
    "have", "has", "will", "can", "do", "if", "but", "it'", "okay", "ok", "yeah", "oh",
];

/// The features of a token sequence: its distinct stems and adjacent stem pairs.
pub fn features(stems: &[&str]) -> HashSet<String> {
    let kept: Vec<&str> = stems
        .iter()
        .copied()
        .filter(|s| !s.is_empty() && !STOP.contains(s) && !s.chars().all(|c| c.is_ascii_digit()))
        .collect();
    let mut out: HashSet<String> = kept.iter().map(|s| s.to_string()).collect();
    for w in kept.windows(2) {
        out.insert(format!("{} {}", w[0], w[1]));
    }
    out
}

fn default_threshold() -> f64 {
    0.85
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl Model {
    pub fn parse(json: &str) -> anyhow::Result<Model> {
        let m: Model = serde_json::from_str(json)?;
        anyhow::ensure!(m.bias.is_finite(), "model bias is not a number");
        anyhow::ensure!(
            (0.5..0.999).contains(&m.threshold),
            "model threshold must be within 0.5..0.999"
        );
        anyhow::ensure!(
            m.weights.values().all(|w| w.is_finite()),
            "a model weight is not a number"
        );
        Ok(m)
    }

    /// Probability that the transcript is a scam.
    pub fn score(&self, feats: &HashSet<String>) -> f64 {
        sigmoid(
            self.bias
                + feats
                    .iter()
                    .filter_map(|f| self.weights.get(f))
                    .sum::<f64>(),
        )
    }

    /// The indicator, when the model is confident: weight 0.25 at the threshold rising to 0.5 at
    /// p = 0.99; evidence the words that weighed most for a scam, with their times.
    pub fn indicator(&self, tokens: &[Token]) -> Option<Indicator> {
        let stems: Vec<&str> = tokens.iter().map(|t| t.stem).collect();
        let p = self.score(&features(&stems));
        if p < self.threshold {
            return None;
        }
        let span = (0.99 - self.threshold).max(0.01);
        let weight = 0.25 + 0.25 * ((p - self.threshold) / span).clamp(0.0, 1.0);
        // The single words that pushed most, each at its first occurrence.
        let mut best: Vec<(f64, usize)> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        for (i, t) in tokens.iter().enumerate() {
            if let Some(w) = self.weights.get(t.stem) {
                if *w > 0.0 && seen.insert(t.stem) {
                    best.push((*w, i));
                }
            }
        }
        best.sort_by(|a, b| b.0.total_cmp(&a.0));
        best.truncate(4);
        best.sort_by_key(|b| b.1);
        let spans: Vec<Span> = best
            .iter()
            .map(|(_, i)| {
                let t = &tokens[*i];
                Span {
                    start: (t.start * 100.0).round() / 100.0,
                    end: (t.end * 100.0).round() / 100.0,
                    text: t.raw.to_owned(),
                }
            })
            .collect();
        Some(Indicator {
            kind: "scam_language".into(),
            evidence: spans
                .iter()
                .map(|s| s.text.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            weight: (weight * 1000.0).round() / 1000.0,
            spans,
        })
    }

    /// Trains by gradient descent with L2 regularisation on `(features, is_scam)` examples;
    /// features seen in fewer than two examples are left out.
    pub fn train(
        language: &str,
        version: &str,
        examples: &[(HashSet<String>, bool)],
        epochs: usize,
    ) -> Model {
        let mut df: HashMap<&str, usize> = HashMap::new();
        for (f, _) in examples {
            for x in f {
                *df.entry(x.as_str()).or_default() += 1;
            }
        }
        let vocab: Vec<&str> = {
            let mut v: Vec<&str> = df
                .iter()
                .filter(|(_, n)| **n >= 2)
                .map(|(k, _)| *k)
                .collect();
            v.sort();
            v
        };
        let index: HashMap<&str, usize> = vocab.iter().enumerate().map(|(i, k)| (*k, i)).collect();
        let rows: Vec<(Vec<usize>, f64)> = examples
            .iter()
            .map(|(f, y)| {
                let mut ix: Vec<usize> = f
                    .iter()
                    .filter_map(|x| index.get(x.as_str()).copied())
                    .collect();
                ix.sort_unstable();
                (ix, if *y { 1.0 } else { 0.0 })
            })
            .collect();
        let (mut w, mut b) = (vec![0.0f64; vocab.len()], 0.0f64);
        let (rate, l2) = (0.5, 0.002);
        let n = rows.len().max(1) as f64;
        for _ in 0..epochs {
            let mut grad = vec![0.0f64; w.len()];
            let mut gb = 0.0;
            for (ix, y) in &rows {
                let p = sigmoid(b + ix.iter().map(|i| w[*i]).sum::<f64>());
                let e = p - y;
                gb += e;
                for i in ix {
                    grad[*i] += e;
                }
            }
            b -= rate * gb / n;
            for (wi, g) in w.iter_mut().zip(&grad) {
                *wi -= rate * (g / n + l2 * *wi);
            }
        }
        let weights = vocab
            .iter()
            .zip(&w)
            .filter(|(_, x)| x.abs() >= 0.01)
            .map(|(k, x)| (k.to_string(), (x * 10_000.0).round() / 10_000.0))
            .collect();
        Model {
            language: language.to_owned(),
            version: version.to_owned(),
            bias: (b * 10_000.0).round() / 10_000.0,
            threshold: default_threshold(),
            weights,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(words: &str) -> HashSet<String> {
        features(&words.split_whitespace().collect::<Vec<_>>())
    }

    #[test]
    fn features_are_stems_and_pairs_without_stop_words() {
        let x = f("read the code to me now");
        assert!(x.contains("read") && x.contains("code") && x.contains("read code"));
        assert!(!x.contains("the") && !x.contains("me"));
    }

    #[test]
    fn training_separates_what_it_was_shown_and_scores_unseen_words_neutrally() {
        let ex: Vec<(HashSet<String>, bool)> = [
            ("gift card code now", true),
            ("gift card pay fee", true),
            ("code gift card urgent", true),
            ("lunch friday pub", false),
            ("pub dinner friday", false),
            ("friday lunch dinner", false),
        ]
        .iter()
        .map(|(t, y)| (f(t), *y))
        .collect();
        let m = Model::train("en", "t", &ex, 300);
        assert!(m.score(&f("gift card now")) > 0.7);
        assert!(m.score(&f("lunch at the pub")) < 0.3);
        let roundtrip = Model::parse(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(roundtrip.weights, m.weights);
        assert!(
            Model::parse(r#"{"language":"en","version":"1","bias":1e999,"weights":{}}"#).is_err()
        );
    }
}
