//! Prices per million tokens, and the cost of a call from its usage.
//!
//! The built-in table is dated: vendors change prices, so `promptgate.yaml`'s `pricing:`
//! extends and overrides it, and a model without a price is warned about, never silently free.

use std::collections::BTreeMap;

use crate::providers::Usage;
use crate::suite::Price;

/// When the built-in prices were last checked against the vendors' published price pages.
pub const TABLE_DATE: &str = "2025-06";

/// What a batch API bills, as a share of the list price: half, for input and output tokens
/// alike, at both OpenAI (Batch API) and Anthropic (Message Batches API) — the vendors' batch
/// documentation and price pages, checked 2026-12. It applies over the suite's `pricing:` too,
/// which are list prices.
pub const BATCH_DISCOUNT: f64 = 0.5;

/// When [`BATCH_DISCOUNT`] was last checked against the vendors' pages.
pub const BATCH_DISCOUNT_DATE: &str = "2026-12";

/// USD per million tokens: (model, input, cached input, output).
const BUILT_IN: &[(&str, f64, f64, f64)] = &[
    ("gpt-4-turbo", 10.0, 10.0, 30.0),
    ("gpt-4", 30.0, 30.0, 60.0),
    ("gpt-4o", 2.50, 1.25, 10.0),
    ("gpt-4o-mini", 0.15, 0.075, 0.60),
    ("gpt-4.1", 2.00, 0.50, 8.00),
    ("gpt-4.1-mini", 0.40, 0.10, 1.60),
    ("gpt-4.1-nano", 0.10, 0.025, 0.40),
    ("gpt-3.5-turbo", 0.50, 0.50, 1.50),
    ("o3-mini", 1.10, 0.55, 4.40),
    ("claude-3-opus", 15.0, 1.50, 75.0),
    ("claude-opus-4", 15.0, 1.50, 75.0),
    ("claude-3-5-sonnet", 3.0, 0.30, 15.0),
    ("claude-3-7-sonnet", 3.0, 0.30, 15.0),
    ("claude-sonnet-4", 3.0, 0.30, 15.0),
    ("claude-3-5-haiku", 0.80, 0.08, 4.0),
    ("claude-3-haiku", 0.25, 0.03, 1.25),
    // Embedding models bill input only.
    ("text-embedding-3-small", 0.02, 0.02, 0.0),
    ("text-embedding-3-large", 0.13, 0.13, 0.0),
    ("text-embedding-ada-002", 0.10, 0.10, 0.0),
];

/// The prices in force for a run: the suite's overrides over the built-in table.
#[derive(Clone, Debug, Default)]
pub struct PriceTable {
    overrides: BTreeMap<String, Price>,
    /// Every price at the batch rate ([`PriceTable::at_batch_rate`]).
    batch: bool,
}

impl PriceTable {
    pub fn new(overrides: &BTreeMap<String, Price>) -> Self {
        PriceTable {
            overrides: overrides.clone(),
            batch: false,
        }
    }

    /// The same prices at the batch APIs' rate: for calls sent through a batch (their
    /// estimate, their reservation under the cap, what they cost).
    pub fn at_batch_rate(&self) -> PriceTable {
        PriceTable {
            overrides: self.overrides.clone(),
            batch: true,
        }
    }

    /// The price of `model`: an exact entry, else the longest entry the model name starts with
    /// (so dated snapshots such as `gpt-4o-2024-08-06` find `gpt-4o`).
    pub fn price(&self, model: &str) -> Option<Price> {
        if let Some(p) = self.overrides.get(model) {
            return Some(if self.batch { discounted(*p) } else { *p });
        }
        let built_in = BUILT_IN.iter().map(|&(m, input, cached, output)| {
            (
                m,
                Price {
                    input,
                    cached_input: Some(cached),
                    output,
                },
            )
        });
        let overrides = self.overrides.iter().map(|(m, p)| (m.as_str(), *p));
        overrides
            .chain(built_in)
            // `m` itself or a dated or suffixed version of it (`m-…`), without a string per entry:
            // the runner and the estimate price every call.
            .filter(|(m, _)| {
                model
                    .strip_prefix(m)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
            })
            .max_by_key(|(m, _)| m.len())
            .map(|(_, p)| if self.batch { discounted(p) } else { p })
    }

    /// Cost in USD of a call with `usage`, or `None` when the model has no price.
    pub fn cost(&self, model: &str, usage: &Usage) -> Option<f64> {
        self.price(model).map(|p| cost_of(&p, usage))
    }

    /// What a call to `model` with `usage` was billed: at the batch rate when it went through a
    /// batch API (`batched`), else at these prices; `None` when the model has no price.
    pub fn billed(&self, model: &str, usage: &Usage, batched: bool) -> Option<f64> {
        self.price(model)
            .map(|p| cost_of(&if batched && !self.batch { discounted(p) } else { p }, usage))
    }
}

fn discounted(p: Price) -> Price {
    Price {
        input: p.input * BATCH_DISCOUNT,
        cached_input: p.cached_input.map(|c| c * BATCH_DISCOUNT),
        output: p.output * BATCH_DISCOUNT,
    }
}

pub fn cost_of(price: &Price, usage: &Usage) -> f64 {
    let cached = usage.cached_input.min(usage.input);
    let uncached = usage.input - cached;
    let cached_price = price.cached_input.unwrap_or(price.input);
    (uncached as f64 * price.input + cached as f64 * cached_price + usage.output as f64 * price.output) / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(table: &PriceTable, model: &str, usage: Usage, expected: Option<f64>) {
        let got = table.cost(model, &usage);
        match (got, expected) {
            (Some(g), Some(e)) => assert!((g - e).abs() < 1e-12, "{model}: {g} != {e}"),
            _ => assert_eq!(got, expected, "{model}"),
        }
    }

    /// The built-in table with one suite price: `house-model` at $1/M input, $2/M output.
    fn house_table() -> PriceTable {
        PriceTable::new(&BTreeMap::from([(
            "house-model".to_owned(),
            Price {
                input: 1.0,
                cached_input: None,
                output: 2.0,
            },
        )]))
    }

    #[test]
    fn costs() {
        let table = house_table();
        let u = |input, cached_input, output| Usage {
            input,
            cached_input,
            output,
        };
        // 1000 input at $10/M + 500 output at $30/M = 0.01 + 0.015
        check(&table, "gpt-4-turbo", u(1000, 0, 500), Some(0.025));
        // cached input at half price: 600 × 2.5 + 400 × 1.25 + 100 × 10, per million
        check(
            &table,
            "gpt-4o",
            u(1000, 400, 100),
            Some((600.0 * 2.5 + 400.0 * 1.25 + 100.0 * 10.0) / 1e6),
        );
        // a dated snapshot finds its family, and the longest prefix wins
        check(&table, "gpt-4o-mini-2024-07-18", u(1_000_000, 0, 0), Some(0.15));
        check(&table, "house-model", u(1_000_000, 0, 1_000_000), Some(3.0));
        check(&table, "mystery-model", u(1, 0, 1), None);
        // more cached than input (a provider quirk) never goes negative
        check(&table, "gpt-4o", u(10, 20, 0), Some(10.0 * 1.25 / 1e6));
    }

    /// Batch calls cost half the list price, the suite's own prices included.
    #[test]
    fn batch_rate_is_half_the_list_price() {
        let table = house_table().at_batch_rate();
        let u = |input, cached_input, output| Usage {
            input,
            cached_input,
            output,
        };
        // gpt-4o lists $2.50 in, $10 out per million: batch $1.25 and $5.
        check(&table, "gpt-4o", u(1_000_000, 0, 1_000_000), Some(1.25 + 5.0));
        // claude-3-5-haiku lists $0.80 in, $4 out: batch $0.40 and $2.
        check(&table, "claude-3-5-haiku", u(1_000_000, 0, 1_000_000), Some(0.40 + 2.0));
        check(&table, "house-model", u(1_000_000, 0, 1_000_000), Some(1.5));
        check(&table, "mystery-model", u(1, 0, 1), None);
    }
}
