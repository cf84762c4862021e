//! The scam analyzer: tactics heard in the transcript, with the words and the time they were
//! said, counter-evidence, and a verdict that explains itself.
//!
//! A rules file per language (`worker/rules/<lang>.json`, or `ANALYZER_RULES_FILE`) describes
//! *tactics* — impersonation, urgency, requests for codes, unusual payment, remote access, … —
//! each with many phrasings, and *counter-evidence* ("we will never ask for your PIN"). Phrases
//! are matched on words, not characters, so recognition errors do not defeat them:
//!
//! - every word is compared by its stem (Snowball), so "arrested", "arresting", "arrest" match;
//! - words of six letters or more also match with one edit (nine or more: two), so
//!   "verifcation" or "bitcoinz" still match;
//! - `{a,b,c}` is any of these words, `*` lets up to three other words in between, `**` up
//!   to eight, `***` up to thirty (two cues anywhere in the same stretch of the call), and
//!   `=word` matches only that word or its plural (no stem, no fuzziness).
//!
//! A match of a *negatable* tactic after a negation in the same sentence ("we will **never**
//! ask for your PIN") is counted as counter-evidence, not as the tactic. A word in a several-word
//! alternative ("gift card") may also be one edit off when short ("gif cards").
//!
//! Risk: each tactic found counts once, with its weight (up to a fifth more when it is heard in
//! several phrasings, though a weak sign never reaches `suspicious` alone), combined as independent evidence (1 − Π(1 − w)); each piece of
//! counter-evidence then scales the risk down by its weight. `scam` at 0.7, `suspicious` at 0.4.

use std::collections::BTreeMap;

use serde::Deserialize;

use events::task::{Indicator, Span};

use crate::speech::Word;

pub const SCAM_AT: f64 = 0.7;
pub const SUSPICIOUS_AT: f64 = 0.4;

/// The rules compiled in: `(language, rules file, learned model)`.
pub const BUILT_IN: &[(&str, &str, Option<&str>)] = &[(
    "en",
    include_str!("../rules/en.json"),
    Some(include_str!("../rules/en.model.json")),
)];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    name: String,
    language: String,
    version: String,
    /// Snowball stemmer name (`english`, `french`, `german`, …).
    stemmer: String,
    negations: Vec<String>,
    tactics: Vec<TacticDef>,
    counter: Vec<TacticDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TacticDef {
    kind: String,
    weight: f64,
    /// How the verdict sentence says it: "asked for a one-time code".
    says: String,
    #[serde(default)]
    negatable: bool,
    /// Counter-evidence only: ignored when any of these tactics is heard too ("we never ask for
    /// your PIN… now read me the code" is no reassurance).
    #[serde(default)]
    voided_by: Vec<String>,
    phrases: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Term {
    /// Any of these words or word sequences (stem, normalised), each exact (`=`) or not.
    Word {
        alts: Vec<(Vec<(String, String)>, bool)>,
    },
    /// Up to n other words.
    Gap(usize),
}

#[derive(Debug)]
struct Tactic {
    kind: String,
    weight: f64,
    says: String,
    negatable: bool,
    voided_by: Vec<String>,
    phrases: Vec<Vec<Term>>,
}

/// One language's tactics.
pub struct Rules {
    pub name: String,
    pub language: String,
    pub version: String,
    stemmer: rust_stemmers::Stemmer,
    negations: Vec<String>,
    tactics: Vec<Tactic>,
    counter: Vec<Tactic>,
    /// The learned check beside the phrasings (`worker/rules/<lang>.model.json`).
    pub model: Option<crate::model::Model>,
}

fn stemmer_for(name: &str) -> anyhow::Result<rust_stemmers::Stemmer> {
    use rust_stemmers::Algorithm::*;
    let algo = match name {
        "english" => English,
        "french" => French,
        "german" => German,
        "spanish" => Spanish,
        "italian" => Italian,
        "portuguese" => Portuguese,
        "dutch" => Dutch,
        "swedish" => Swedish,
        "norwegian" => Norwegian,
        "danish" => Danish,
        "finnish" => Finnish,
        "russian" => Russian,
        "romanian" => Romanian,
        "hungarian" => Hungarian,
        "turkish" => Turkish,
        "arabic" => Arabic,
        other => anyhow::bail!("unknown stemmer {other:?}"),
    };
    Ok(rust_stemmers::Stemmer::create(algo))
}

/// Lower case, letters and digits only ("Don't!" → "dont", "$500" → "500").
pub fn normalise(word: &str) -> String {
    word.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Edit distance, giving up above `max`.
fn within_edits(a: &str, b: &str, max: usize) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > max {
        return false;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        let mut best = cur[0];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            best = best.min(cur[j]);
        }
        if best > max {
            return false;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()] <= max
}

fn allowed_edits(len: usize) -> usize {
    match len {
        0..=5 => 0,
        6..=8 => 1,
        _ => 2,
    }
}

/// A word of the transcript, ready for matching.
struct Heard {
    norm: String,
    stem: String,
    start: f64,
    end: f64,
    raw: String,
    /// Which sentence of the transcript it is in (punctuation from the recogniser).
    sentence: usize,
}

impl Rules {
    /// The built-in rules for `language` (ISO 639-1), with their learned check; `Ok(None)`
    /// when there are none for that language.
    pub fn built_in(language: &str) -> anyhow::Result<Option<Rules>> {
        let Some((_, json, model)) = BUILT_IN.iter().find(|(l, _, _)| *l == language) else {
            return Ok(None);
        };
        let mut r = Rules::parse(json)
            .map_err(|e| anyhow::anyhow!("built-in rules for {language}: {e}"))?;
        r.model = model
            .map(crate::model::Model::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("built-in learned check for {language}: {e}"))?;
        Ok(Some(r))
    }

    /// The stems of a text's words, as the matcher and the model see them.
    pub fn stems(&self, text: &str) -> Vec<String> {
        text.split(|c: char| c.is_whitespace() || c == '-' || c == '/')
            .map(normalise)
            .filter(|n| !n.is_empty())
            .map(|n| self.stemmer.stem(&n).into_owned())
            .collect()
    }

    pub fn parse(json: &str) -> anyhow::Result<Rules> {
        let file: RuleFile = serde_json::from_str(json)?;
        let stemmer = stemmer_for(&file.stemmer)?;
        let compile = |defs: Vec<TacticDef>, stemmer: &rust_stemmers::Stemmer| {
            defs.into_iter()
                .map(|d| {
                    anyhow::ensure!(
                        (0.0..1.0).contains(&d.weight),
                        "{}: weight must be within 0..1",
                        d.kind
                    );
                    anyhow::ensure!(!d.phrases.is_empty(), "{}: no phrases", d.kind);
                    let phrases = d
                        .phrases
                        .iter()
                        .map(|p| {
                            compile_phrase(p, stemmer)
                                .map_err(|e| anyhow::anyhow!("{}: {p:?}: {e}", d.kind))
                        })
                        .collect::<anyhow::Result<Vec<_>>>()?;
                    Ok(Tactic {
                        kind: d.kind,
                        weight: d.weight,
                        says: d.says,
                        negatable: d.negatable,
                        voided_by: d.voided_by,
                        phrases,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()
        };
        let tactics = compile(file.tactics, &stemmer)?;
        let counter = compile(file.counter, &stemmer)?;
        Ok(Rules {
            name: file.name,
            language: file.language,
            version: file.version,
            negations: file.negations.iter().map(|n| normalise(n)).collect(),
            stemmer,
            tactics,
            counter,
            model: None,
        })
    }

    fn heard(&self, words: &[Word]) -> Vec<Heard> {
        let mut out = Vec::with_capacity(words.len());
        let mut sentence = 0;
        for w in words {
            // Whisper sometimes joins words ("gift-card", "one-time"): split them again.
            let parts: Vec<&str> = w
                .text
                .split(|c: char| c.is_whitespace() || c == '-' || c == '/')
                .filter(|p| !normalise(p).is_empty())
                .collect();
            let n = parts.len().max(1) as f64;
            for (i, p) in parts.iter().enumerate() {
                let norm = normalise(p);
                let dur = (w.end - w.start) / n;
                out.push(Heard {
                    stem: self.stemmer.stem(&norm).into_owned(),
                    norm,
                    start: w.start + dur * i as f64,
                    end: w.start + dur * (i as f64 + 1.0),
                    raw: p.trim_matches(|c: char| !c.is_alphanumeric()).to_owned(),
                    sentence,
                });
            }
            if w.text.trim_end().ends_with(['.', '?', '!']) {
                sentence += 1;
            }
        }
        out
    }

    /// Tactics and counter-evidence heard in `words`.
    pub fn find(&self, words: &[Word]) -> Findings {
        let heard = self.heard(words);
        let mut tactics: BTreeMap<usize, Vec<Span>> = BTreeMap::new();
        let mut counter: BTreeMap<usize, Vec<Span>> = BTreeMap::new();
        let mut negated: Vec<Span> = Vec::new();
        for (ti, t) in self.tactics.iter().enumerate() {
            for terms in &t.phrases {
                for (from, to) in find_all(terms, &heard) {
                    let span = span_of(&heard[from..to]);
                    // Denied before it ("we never ask for…") or within it ("no fee", "no need
                    // to send me any logins").
                    let denied = self.negated_before(&heard, from)
                        || heard[from..to.saturating_sub(1)]
                            .iter()
                            .any(|h| self.negations.contains(&h.norm));
                    // The speaker's own ("I'll text you my bank details") or given to the
                    // listener ("I can give you your PAC code") is not a request.
                    let own = heard[to.saturating_sub(3).max(from)..to]
                        .iter()
                        .any(|h| h.norm == "my")
                        || (heard.get(from + 1).is_some_and(|h| h.norm == "you")
                            && matches!(
                                heard[from].stem.as_str(),
                                "give" | "send" | "text" | "email" | "tell"
                            ));
                    if t.negatable && own {
                        continue;
                    }
                    if t.negatable && denied {
                        negated.push(span);
                    } else {
                        push_span(tactics.entry(ti).or_default(), span);
                    }
                }
            }
        }
        for (ci, c) in self.counter.iter().enumerate() {
            for terms in &c.phrases {
                for (from, to) in find_all(terms, &heard) {
                    // "Do not call our usual number" is no direction to an official number.
                    if !c.voided_by.is_empty() && self.negated_before(&heard, from) {
                        continue;
                    }
                    push_span(counter.entry(ci).or_default(), span_of(&heard[from..to]));
                }
            }
        }
        let mut found = Findings::default();
        for (ti, spans) in tactics {
            let t = &self.tactics[ti];
            found.indicators.push(indicator(&t.kind, t.weight, spans));
        }
        if let Some(model) = &self.model {
            let tokens: Vec<crate::model::Token> = heard
                .iter()
                .map(|h| crate::model::Token {
                    stem: &h.stem,
                    raw: &h.raw,
                    start: h.start,
                    end: h.end,
                })
                .collect();
            found.indicators.extend(model.indicator(&tokens));
        }
        let heard_kinds: Vec<&str> = found.indicators.iter().map(|i| i.kind.as_str()).collect();
        for (ci, spans) in counter {
            let c = &self.counter[ci];
            if c.voided_by
                .iter()
                .any(|k| heard_kinds.contains(&k.as_str()))
            {
                continue;
            }
            found.counter.push(indicator(&c.kind, c.weight, spans));
        }
        // "Won't ask for your PIN" counts only if nothing of the kind is asked for either.
        let contradicted = ["credential_request", "unusual_payment", "remote_access"]
            .iter()
            .any(|k| heard_kinds.contains(k));
        if !negated.is_empty() && !contradicted {
            let mut spans = Vec::new();
            for s in negated {
                push_span(&mut spans, s);
            }
            found.counter.push(indicator("denies_asking", 0.3, spans));
        }
        found
    }

    /// Whether the match at `at` is denied: a negation right before it ("don't share the
    /// code"), or a negated asking verb earlier in the same sentence ("we will never ask you for
    /// your PIN, your password or any one-time code").
    fn negated_before(&self, heard: &[Heard], at: usize) -> bool {
        let sentence = heard[at].sentence;
        let is_negation = |h: &Heard| self.negations.contains(&h.norm);
        let near = at.saturating_sub(2);
        if heard[near..at].iter().any(is_negation) {
            return true;
        }
        let from = at.saturating_sub(20);
        (from..at).any(|i| {
            heard[i].sentence == sentence
                && is_negation(&heard[i])
                && heard[i + 1..(i + 4).min(at)].iter().any(|h| {
                    matches!(
                        h.stem.as_str(),
                        "ask"
                            | "request"
                            | "need"
                            | "want"
                            | "requir"
                            | "call"
                            | "text"
                            | "email"
                            | "take"
                            | "accept"
                    )
                })
        })
    }

    /// What each kind says in a verdict sentence.
    pub fn says(&self, kind: &str) -> Option<&str> {
        self.tactics
            .iter()
            .chain(&self.counter)
            .find(|t| t.kind == kind)
            .map(|t| t.says.as_str())
    }
}

fn indicator(kind: &str, weight: f64, spans: Vec<Span>) -> Indicator {
    // Heard in several phrasings: a little more certain (at most +30%, below 0.95).
    let distinct = {
        let mut texts: Vec<String> = spans.iter().map(|s| s.text.to_lowercase()).collect();
        texts.sort();
        texts.dedup();
        texts.len()
    };
    let boosted = (weight * (1.0 + 0.1 * (distinct.saturating_sub(1).min(2)) as f64)).min(0.95);
    // A weak sign said twice is still a weak sign: it never reaches `suspicious` alone.
    let w = if weight < SUSPICIOUS_AT {
        boosted.min(SUSPICIOUS_AT - 0.01)
    } else {
        boosted
    };
    let mut evidence: Vec<String> = Vec::new();
    for s in &spans {
        if !evidence.iter().any(|e| e.eq_ignore_ascii_case(&s.text)) {
            evidence.push(s.text.clone());
        }
    }
    Indicator {
        kind: kind.to_owned(),
        evidence: evidence.join(", "),
        weight: (w * 1000.0).round() / 1000.0,
        spans,
    }
}

/// Keeps spans distinct: an overlapping match extends the earlier span's list only if new.
fn push_span(spans: &mut Vec<Span>, span: Span) {
    if spans
        .iter()
        .any(|s| s.start < span.end && span.start < s.end)
    {
        return;
    }
    spans.push(span);
    spans.sort_by(|a, b| a.start.total_cmp(&b.start));
}

fn span_of(words: &[Heard]) -> Span {
    let round = |x: f64| (x * 100.0).round() / 100.0;
    Span {
        start: round(words.first().map(|w| w.start).unwrap_or(0.0)),
        end: round(words.last().map(|w| w.end).unwrap_or(0.0)),
        text: words
            .iter()
            .map(|w| w.raw.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// Splits a phrase into terms, keeping `{…}` (which may hold spaces) together.
fn split_terms(phrase: &str) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    for c in phrase.chars() {
        match c {
            '{' => {
                anyhow::ensure!(depth == 0, "nested braces");
                depth = 1;
                cur.push(c);
            }
            '}' => {
                anyhow::ensure!(depth == 1, "unbalanced braces");
                depth = 0;
                cur.push(c);
            }
            c if c.is_whitespace() && depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    anyhow::ensure!(depth == 0, "unbalanced braces");
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

fn compile_phrase(phrase: &str, stemmer: &rust_stemmers::Stemmer) -> anyhow::Result<Vec<Term>> {
    let mut terms = Vec::new();
    for tok in split_terms(phrase)? {
        match tok.as_str() {
            "*" => terms.push(Term::Gap(3)),
            "**" => terms.push(Term::Gap(8)),
            "***" => terms.push(Term::Gap(30)),
            _ => {
                // `=` before a word or a braced group applies to every alternative in it;
                // inside braces it applies to that alternative.
                let (all_exact, tok) = match tok.strip_prefix('=') {
                    Some(rest) => (true, rest),
                    None => (false, tok.as_str()),
                };
                let alts: Vec<&str> = match tok.strip_prefix('{').and_then(|t| t.strip_suffix('}'))
                {
                    Some(inner) => inner.split(',').collect(),
                    None => vec![tok],
                };
                let alts = alts
                    .into_iter()
                    .map(|alt| {
                        let alt = alt.trim();
                        let (exact, alt) = match alt.strip_prefix('=') {
                            Some(rest) => (true, rest),
                            None => (all_exact, alt),
                        };
                        let words: Vec<(String, String)> = alt
                            .split_whitespace()
                            .map(normalise)
                            .filter(|n| !n.is_empty())
                            .map(|n| (stemmer.stem(&n).into_owned(), n))
                            .collect();
                        anyhow::ensure!(!words.is_empty(), "an empty word in {tok:?}");
                        Ok((words, exact))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                terms.push(Term::Word { alts });
            }
        }
    }
    anyhow::ensure!(
        matches!(terms.first(), Some(Term::Word { .. }))
            && matches!(terms.last(), Some(Term::Word { .. })),
        "a phrase must start and end with a word"
    );
    Ok(terms)
}

/// `in_phrase`: the word is part of a several-word alternative ("gift card"), whose other words
/// keep a short word's one edit ("gif cards") from matching by chance.
fn word_matches((stem, norm): &(String, String), exact: bool, in_phrase: bool, h: &Heard) -> bool {
    if exact {
        // The word itself or its plural: "=detective" is not "detected".
        return *norm == h.norm || h.norm.strip_suffix('s') == Some(norm.as_str());
    }
    if *stem == h.stem || *norm == h.norm {
        return true;
    }
    let len = norm.chars().count().min(h.norm.chars().count());
    // A short word inside a several-word alternative may be one edit off, if it starts the
    // same ("gif cards"; but "money back" is not "money pack").
    let same_start = norm.chars().next() == h.norm.chars().next();
    let edits = if in_phrase && (3..=5).contains(&len) && same_start {
        1
    } else {
        allowed_edits(len)
    };
    // On the words as heard, not their stems: "deport" and "depart" are one edit apart.
    edits > 0 && within_edits(norm, &h.norm, edits)
}

/// Every non-overlapping match of `terms` in `heard`: `(first word, one past the last)`.
fn find_all(terms: &[Term], heard: &[Heard]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < heard.len() {
        if let Some(end) = match_at(terms, heard, i) {
            out.push((i, end));
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

/// Matches `terms` starting exactly at `at`; the end of the first match found.
fn match_at(terms: &[Term], heard: &[Heard], at: usize) -> Option<usize> {
    let Some((first, rest)) = terms.split_first() else {
        return Some(at);
    };
    match first {
        Term::Word { alts } => alts.iter().find_map(|(words, exact)| {
            let all = words.iter().enumerate().all(|(k, w)| {
                heard
                    .get(at + k)
                    .is_some_and(|h| word_matches(w, *exact, words.len() > 1, h))
            });
            if all {
                match_at(rest, heard, at + words.len())
            } else {
                None
            }
        }),
        Term::Gap(n) => (0..=*n).find_map(|skip| match_at(rest, heard, at + skip)),
    }
}

/// What the rules found.
#[derive(Debug, Default, Clone)]
pub struct Findings {
    pub indicators: Vec<Indicator>,
    pub counter: Vec<Indicator>,
}

/// Combined risk: independent evidence for, then each counter-evidence scales it down.
pub fn risk_score(indicators: &[Indicator], counter: &[Indicator]) -> f64 {
    let keep = indicators
        .iter()
        .fold(1.0, |acc, i| acc * (1.0 - i.weight.clamp(0.0, 1.0)));
    let against = counter
        .iter()
        .fold(1.0, |acc, c| acc * (1.0 - c.weight.clamp(0.0, 1.0)));
    (((1.0 - keep) * against) * 1000.0).round() / 1000.0
}

pub fn verdict_for(risk: f64) -> &'static str {
    if risk >= SCAM_AT {
        "scam"
    } else if risk >= SUSPICIOUS_AT {
        "suspicious"
    } else {
        "safe"
    }
}

/// "a, b and c"
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The verdict in one sentence, from the strongest indicators.
pub fn explain(
    verdict: &str,
    indicators: &[Indicator],
    counter: &[Indicator],
    says: impl Fn(&str) -> Option<String>,
) -> String {
    let mut strongest: Vec<&Indicator> = indicators.iter().collect();
    strongest.sort_by(|a, b| b.weight.total_cmp(&a.weight));
    let reasons: Vec<String> = strongest
        .iter()
        .take(3)
        .filter_map(|i| says(&i.kind))
        .collect();
    let against: Vec<String> = counter
        .iter()
        .take(2)
        .filter_map(|c| says(&c.kind))
        .collect();
    if reasons.is_empty() && matches!(verdict, "scam" | "suspicious") {
        return "Be careful: this call has signs of a scam.".to_owned();
    }
    match verdict {
        "scam" => format!("Likely a scam: the caller {}.", and_list(&reasons)),
        "suspicious" => format!(
            "Be careful: the caller {}{}.",
            and_list(&reasons),
            if against.is_empty() {
                String::new()
            } else {
                format!(", though they also {}", and_list(&against))
            }
        ),
        _ if !reasons.is_empty() && !against.is_empty() => format!(
            "No scam pattern: the caller {}, but also {}.",
            and_list(&reasons),
            and_list(&against)
        ),
        _ if !against.is_empty() => format!(
            "No scam tactics were heard, and the caller {}.",
            and_list(&against)
        ),
        _ if !reasons.is_empty() => format!(
            "No scam pattern: only a single weak sign (the caller {}).",
            and_list(&reasons)
        ),
        _ => "No scam tactics were heard in this call.".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::speech::spread_words;

    fn en() -> Rules {
        Rules::built_in("en").unwrap().unwrap()
    }

    fn kinds(text: &str) -> (Vec<String>, Vec<String>) {
        let f = en().find(&spread_words(text, 0.0, 10.0));
        (
            f.indicators.iter().map(|i| i.kind.clone()).collect(),
            f.counter.iter().map(|i| i.kind.clone()).collect(),
        )
    }

    fn verdict(text: &str) -> &'static str {
        let f = en().find(&spread_words(text, 0.0, 10.0));
        verdict_for(risk_score(&f.indicators, &f.counter))
    }

    #[test]
    fn every_built_in_rules_file_parses() {
        for (lang, json, model) in BUILT_IN {
            let r = Rules::parse(json).unwrap();
            assert_eq!(r.language, *lang);
            assert!(!r.tactics.is_empty());
            if let Some(m) = model {
                assert_eq!(crate::model::Model::parse(m).unwrap().language, *lang);
            }
        }
    }

    #[test]
    fn words_match_by_stem_and_survive_small_recognition_errors() {
        assert!(within_edits("verification", "verifcation", 2));
        assert!(!within_edits("pin", "pen", 0));
        assert!(within_edits("bitcoin", "bitcoins", 1));
        let (k, _) = kinds("please read me the verifcation code we just sent you");
        assert!(k.contains(&"credential_request".to_owned()), "{k:?}");
        let (k, _) = kinds("you will be arrested by the sheriffs office today");
        assert!(k.contains(&"urgency_threat".to_owned()), "{k:?}");
    }

    #[test]
    fn a_classic_scam_is_a_scam_and_says_why() {
        let text = "This is officer Daniels from the IRS. There is a warrant for your arrest. \
                    To avoid it you must pay today with Google Play gift cards and read me the numbers. \
                    Do not tell anyone about this call.";
        let f = en().find(&spread_words(text, 0.0, 20.0));
        let risk = risk_score(&f.indicators, &f.counter);
        assert_eq!(verdict_for(risk), "scam", "{f:?}");
        let k: Vec<&str> = f.indicators.iter().map(|i| i.kind.as_str()).collect();
        for want in [
            "authority_impersonation",
            "urgency_threat",
            "unusual_payment",
            "secrecy_isolation",
        ] {
            assert!(k.contains(&want), "missing {want} in {k:?}");
        }
        // Evidence carries the words as heard and where they were said.
        let pay = f
            .indicators
            .iter()
            .find(|i| i.kind == "unusual_payment")
            .unwrap();
        assert!(
            pay.evidence.to_lowercase().contains("google play"),
            "{}",
            pay.evidence
        );
        assert!(
            pay.spans[0].start > 5.0 && pay.spans[0].end <= 20.0,
            "{:?}",
            pay.spans
        );
        let r = en();
        let sentence = explain("scam", &f.indicators, &f.counter, |k| {
            r.says(k).map(str::to_owned)
        });
        assert!(
            sentence.starts_with("Likely a scam: the caller "),
            "{sentence}"
        );
    }

    #[test]
    fn a_bank_that_says_it_will_never_ask_for_codes_is_not_a_scam() {
        let text = "Hello, this is the fraud team at your bank. We noticed an unusual payment on your card. \
                    We will never ask you for your PIN or a security code. \
                    Please call the number on the back of your card to check this.";
        let (k, c) = kinds(text);
        assert!(!k.contains(&"credential_request".to_owned()), "{k:?}");
        assert!(!c.is_empty(), "{c:?}");
        assert_eq!(verdict(text), "safe");
    }

    #[test]
    fn a_reassurance_followed_by_a_request_for_the_code_is_no_reassurance() {
        let text = "This is the fraud team at your bank. We will never ask for your PIN. \
                    To cancel the payment, read me the six digit code we just sent you, \
                    and then buy Google Play gift cards to secure the money.";
        let (k, c) = kinds(text);
        assert!(k.contains(&"credential_request".to_owned()), "{k:?}");
        assert!(c.is_empty(), "{c:?}");
        assert_ne!(verdict(text), "safe");
    }

    #[test]
    fn ordinary_calls_that_mention_police_gift_cards_or_a_pin_are_safe() {
        for text in [
            "Hey, the police came by the party last night because of the noise, it was so funny.",
            "I bought a gift card for your sister's birthday, can you sign the card tonight?",
            "Hi mum, I changed the PIN on the garage door, it's the same as grandma's birthday.",
            "Hi, it's Dr Patel's surgery, your prescription is ready to collect on Monday.",
        ] {
            assert_eq!(verdict(text), "safe", "{text}");
        }
    }

    #[test]
    fn an_exact_alternative_is_not_matched_by_its_stem() {
        // "customs" and "customer" share the stem "custom".
        let (k, _) = kinds("hi this is Tom from Amazon customer service about your return");
        assert!(!k.contains(&"authority_impersonation".to_owned()), "{k:?}");
        let (k, _) =
            kinds("this is officer Grant calling from customs about a parcel in your name");
        assert!(k.contains(&"authority_impersonation".to_owned()), "{k:?}");
    }

    #[test]
    fn bad_rules_are_refused() {
        let base = |tactics: &str| {
            format!(
                r#"{{"name":"x","language":"en","version":"1","stemmer":"english","negations":[],"tactics":{tactics},"counter":[]}}"#
            )
        };
        assert!(Rules::parse(&base(
            r#"[{"kind":"k","weight":2,"says":"s","phrases":["a"]}]"#
        ))
        .is_err());
        assert!(Rules::parse(&base(
            r#"[{"kind":"k","weight":0.5,"says":"s","phrases":["* a"]}]"#
        ))
        .is_err());
        assert!(Rules::parse(&base(
            r#"[{"kind":"k","weight":0.5,"says":"s","phrases":[]}]"#
        ))
        .is_err());
        assert!(Rules::parse(&base(
            r#"[{"kind":"k","weight":0.5,"says":"s","phrases":["{,}"]}]"#
        ))
        .is_err());
        assert!(Rules::parse(&base("[]").replace("english", "klingon")).is_err());
    }

    #[test]
    fn risk_combines_evidence_and_counter_evidence() {
        let ind = |w| Indicator {
            kind: "k".into(),
            evidence: String::new(),
            weight: w,
            spans: vec![],
        };
        assert_eq!(risk_score(&[], &[]), 0.0);
        assert_eq!(risk_score(&[ind(0.5), ind(0.5)], &[]), 0.75);
        assert_eq!(risk_score(&[ind(0.5), ind(0.5)], &[ind(0.5)]), 0.375);
    }
}
