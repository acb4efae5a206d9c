//! The suite as written in its files: serde types that reject unknown keys.
//!
//! Nothing outside `suite` sees these; [`super::load`] resolves and validates them into the
//! types of `suite/mod.rs` once.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_saphyr::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSuite {
    pub version: Spanned<u32>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub providers: BTreeMap<String, RawProvider>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub pricing: BTreeMap<String, Spanned<RawPrice>>,
    pub traffic: Option<RawTraffic>,
    pub budget: Option<RawBudget>,
    pub defaults: Option<RawDefaults>,
    pub experiments: Vec<RawExperiment>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub gates: BTreeMap<String, Spanned<RawGate>>,
    /// Read by `promptgate canary` (`super::canary::load_canary`); parsed here too so a typo in
    /// it is an error wherever the file is read.
    pub canary: Option<super::canary::RawCanary>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    #[serde(rename = "type")]
    pub kind: ProviderKind,
    pub api_key_env: Option<String>,
    pub base_url: Option<String>,
    pub concurrency: Option<Spanned<usize>>,
    pub requests_per_minute: Option<Spanned<u32>>,
    pub tokens_per_minute: Option<Spanned<u32>>,
    pub timeout_ms: Option<Spanned<u64>>,
    pub max_retries: Option<u32>,
    /// Azure OpenAI.
    pub deployment: Option<String>,
    pub api_version: Option<String>,
    /// exec: the command and its arguments.
    pub command: Option<Vec<String>>,
    /// exec: the environment variables the program receives (it gets no others but a few
    /// harmless ones such as PATH and HOME).
    #[serde(default)]
    pub env: Vec<String>,
    /// The model a judge calls through this provider (experiments take theirs from the variant).
    pub model: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    Openai,
    Anthropic,
    AzureOpenai,
    OpenaiCompatible,
    Exec,
    Mock,
}

impl ProviderKind {
    /// Whether the type can embed text: the OpenAI API and compatible servers
    /// (`POST /v1/embeddings`, `providers::openai`), and the mock (hashed bags of words,
    /// offline). Azure's embeddings live on a deployment of their own.
    pub fn has_embeddings(self) -> bool {
        matches!(
            self,
            ProviderKind::Openai | ProviderKind::OpenaiCompatible | ProviderKind::Mock
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::AzureOpenai => "azure-openai",
            ProviderKind::OpenaiCompatible => "openai-compatible",
            ProviderKind::Exec => "exec",
            ProviderKind::Mock => "mock",
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrice {
    pub input: f64,
    pub cached_input: Option<f64>,
    pub output: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTraffic {
    pub requests_per_month: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    pub approve_above_usd: Option<Spanned<f64>>,
    pub max_usd: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    pub repeats: Option<Spanned<u32>>,
    pub alpha: Option<Spanned<f64>>,
    pub provider: Option<Spanned<String>>,
    pub concurrency: Option<Spanned<usize>>,
    pub max_error_rate: Option<Spanned<f64>>,
    pub seed: Option<u64>,
    /// Run cases in a seeded random order in batches and stop once the verdict is settled.
    pub sequential: Option<bool>,
    /// Looks of a sequential run (equal shares of the cases), 2 to 10.
    pub sequential_looks: Option<Spanned<u32>>,
    /// The provider judge assertions call (any configured provider).
    pub judge: Option<Spanned<String>>,
    /// The judge's model; else the judge provider's `model`.
    pub judge_model: Option<Spanned<String>>,
    /// Judge each output this many times (judge noise averaged like repeats).
    pub judge_repeats: Option<Spanned<u32>>,
    /// The provider `similarity` with `method: embeddings` embeds through.
    pub embedder: Option<Spanned<String>>,
    /// The embedder's embedding model (the mock needs none).
    pub embedding_model: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExperiment {
    pub name: Spanned<String>,
    pub description: Option<String>,
    pub variant: Spanned<String>,
    pub dataset: Spanned<String>,
    pub provider: Option<Spanned<String>>,
    /// Providers to fall back on, in order, when `provider` fails persistently.
    #[serde(default)]
    pub fallback: Vec<Spanned<String>>,
    pub repeats: Option<Spanned<u32>>,
    #[serde(default)]
    pub assert: Vec<Spanned<RawAssertion>>,
    /// Extra files the experiment depends on (globs), e.g. a RAG corpus or scorer scripts.
    #[serde(default)]
    pub depends_on: Vec<Spanned<String>>,
}

#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawAssertion {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: Option<serde_json::Value>,
    /// json-path: where in the output's JSON to look.
    pub path: Option<String>,
    /// The score's name in the results (defaults to the type); an `exec` scorer may name
    /// several, one per score its command returns.
    pub metric: Option<MetricNames>,
    /// similarity: the score at or above which the assertion passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// similarity: how the score is computed (`rouge-l`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// exec: the scorer's program and its arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// pii: what is not a leak (the organisation's own public addresses and numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<String>>,
    /// hallucination: the case var holding the context the output must stay within.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_var: Option<String>,
}

/// `metric: tone` or `metric: [tone, concise]`: the names an assertion's scores take.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricNames(pub Vec<String>);

impl<'de> Deserialize<'de> for MetricNames {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MetricNames;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a metric name, or a list of names for an exec scorer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MetricNames, E> {
                Ok(MetricNames(vec![v.to_owned()]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<MetricNames, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(MetricNames(names))
            }
        }
        d.deserialize_any(V)
    }
}

impl serde::Serialize for MetricNames {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            many => many.serialize(s),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGate {
    pub direction: Option<RawDirection>,
    pub margin: Option<Margin>,
    pub alpha: Option<f64>,
    pub blocking: Option<bool>,
    pub slo: Option<Slo>,
    pub require: Option<RawRequire>,
}

/// A gate's objective as written: a number in the metric's unit, or, for a share (a rate such
/// as `hallucination_rate`), a percentage such as `"5%"`.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(from = "Amount")]
pub enum Slo {
    Value(f64),
    Percent(f64),
}

impl Slo {
    /// The objective in the metric's unit; why not, for a percentage of a metric that is not a
    /// share.
    pub fn resolve(self, metric: &str) -> Result<f64, String> {
        match self {
            Slo::Value(v) => Ok(v),
            Slo::Percent(p) if crate::metrics::unit_of(metric) == crate::metrics::Unit::Share => Ok(p / 100.0),
            Slo::Percent(p) => Err(format!(
                "gate `{metric}`: slo \"{p}%\" is a percentage, and `{metric}` is not a share: give its objective as a number in its unit"
            )),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawDirection {
    Higher,
    Lower,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RawRequire {
    NonInferiority,
    Equivalence,
}

/// A gate margin: an absolute amount in the metric's unit (`0.02`) or relative to the baseline
/// (`"15%"`).
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(try_from = "Amount")]
pub enum Margin {
    Absolute(f64),
    Relative(f64),
}

/// A number or a percentage (`"10%"`) as a config writes it: a margin's or an objective's
/// amount, finite.
#[derive(Clone, Copy, Debug)]
pub enum Amount {
    Number(f64),
    Percent(f64),
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Amount;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or a percentage such as \"10%\"")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Amount, E> {
                if v.is_finite() {
                    Ok(Amount::Number(v))
                } else {
                    Err(E::custom("the amount must be a finite number"))
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Amount, E> {
                self.visit_f64(v as f64)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Amount, E> {
                self.visit_f64(v as f64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Amount, E> {
                let finite = |x: &str| x.trim().parse::<f64>().ok().filter(|x| x.is_finite());
                match v.trim().strip_suffix('%') {
                    Some(p) => finite(p)
                        .map(Amount::Percent)
                        .ok_or_else(|| E::custom(format!("`{v}` is not a percentage such as \"10%\""))),
                    None => finite(v)
                        .map(Amount::Number)
                        .ok_or_else(|| E::custom(format!("`{v}` is not a number or a percentage such as \"10%\""))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl TryFrom<Amount> for Margin {
    type Error = String;
    fn try_from(amount: Amount) -> Result<Margin, String> {
        match amount {
            Amount::Number(v) if v >= 0.0 => Ok(Margin::Absolute(v)),
            Amount::Percent(p) if p >= 0.0 => Ok(Margin::Relative(p / 100.0)),
            _ => Err("a margin must be a non-negative number or percentage".to_owned()),
        }
    }
}

impl From<Amount> for Slo {
    fn from(amount: Amount) -> Slo {
        match amount {
            Amount::Number(v) => Slo::Value(v),
            Amount::Percent(p) => Slo::Percent(p),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVariant {
    pub version: Option<Scalar>,
    pub model: Spanned<String>,
    pub prompt: Spanned<String>,
    pub temperature: Option<Spanned<f64>>,
    pub max_tokens: Option<Spanned<u32>>,
    pub top_p: Option<Spanned<f64>>,
    pub frequency_penalty: Option<Spanned<f64>>,
    pub presence_penalty: Option<Spanned<f64>>,
    /// One stop sequence, or a list of them.
    pub stop: Option<Spanned<OneOrMany>>,
    pub description: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub evaluation_metrics: BTreeMap<String, MetricValue>,
}

/// A section written with nothing under it (`gates:` alone is YAML's null) is an empty one,
/// as if it were left out.
fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A string, or a list of strings (`stop: "###"` or `stop: ["###", "END"]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// A scalar read as text, so `version: 1.2` and `version: v1.2.3` both work, as written:
/// `version: 1.10` is `1.10`, not the number 1.1 (asked for a string, YAML hands over the
/// scalar's own text).
#[derive(Clone, Debug, PartialEq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a version such as v1.2.3")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_owned()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_string(V)
    }
}

/// A recorded metric value as people write them: `0.87`, `$0.008`, `650ms`, `2%`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetricValue(pub f64);

impl<'de> Deserialize<'de> for MetricValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = MetricValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number such as 0.87, $0.008, 650ms or 2%")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<MetricValue, E> {
                Ok(MetricValue(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<MetricValue, E> {
                Ok(MetricValue(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<MetricValue, E> {
                Ok(MetricValue(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MetricValue, E> {
                parse_metric_value(v)
                    .map(MetricValue)
                    .ok_or_else(|| E::custom(format!("`{v}` is not a number such as 0.87, $0.008, 650ms or 2%")))
            }
        }
        d.deserialize_any(V)
    }
}

fn parse_metric_value(text: &str) -> Option<f64> {
    let t = text.trim();
    let (t, scale) = if let Some(p) = t.strip_suffix('%') {
        (p, 0.01)
    } else if let Some(p) = t.strip_suffix("ms") {
        (p, 1.0)
    } else if let Some(p) = t.strip_suffix('s') {
        (p, 1000.0)
    } else {
        (t, 1.0)
    };
    let t = t.trim().strip_prefix('$').unwrap_or(t.trim());
    t.trim()
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .map(|x| x * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A variant's `version` is the text written: `1.10` was read as the number 1.1, and a PR
    /// that moved 1.1 to 1.10 was told its version had not changed.
    #[test]
    fn a_version_is_read_as_written() {
        #[derive(Deserialize)]
        struct Versioned {
            version: Scalar,
        }
        for (yaml, expected) in [
            ("version: 1.10", "1.10"),
            ("version: 1.1", "1.1"),
            ("version: 007", "007"),
            ("version: v1.2.3", "v1.2.3"),
            ("version: 2", "2"),
            ("version: \"1.10\"", "1.10"),
        ] {
            let v: Versioned = serde_saphyr::from_str(yaml).unwrap();
            assert_eq!(v.version.0, expected, "{yaml}");
        }
    }

    #[test]
    fn metric_values_as_people_write_them() {
        for (text, expected) in [
            ("$0.008", Some(0.008)),
            ("650ms", Some(650.0)),
            ("2%", Some(0.02)),
            ("0.87", Some(0.87)),
            ("1.5s", Some(1500.0)),
            ("fast", None),
            ("$", None),
        ] {
            assert_eq!(parse_metric_value(text), expected, "{text}");
        }
    }

    #[test]
    fn an_slo_is_a_number_or_a_rates_percentage() {
        let slo = |yaml: &str| serde_saphyr::from_str::<Slo>(yaml);
        assert_eq!(slo("800").unwrap().resolve("latency_p95_ms"), Ok(800.0));
        assert_eq!(slo("0.05").unwrap().resolve("hallucination_rate"), Ok(0.05));
        assert_eq!(slo("\"5%\"").unwrap().resolve("hallucination_rate"), Ok(0.05));
        assert_eq!(slo("\"90 %\"").unwrap().resolve("pass_rate"), Ok(0.9));
        assert!(slo("\"5%\"").unwrap().resolve("latency_p95_ms").is_err());
        assert!(slo("fast").is_err());
        assert!(slo(".inf").is_err());
    }
}
