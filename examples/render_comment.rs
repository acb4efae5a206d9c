//! Renders the PR comment of a `results.json` with its charts shown inline, as the publisher
//! does once the PNGs are uploaded: `cargo run --example render_comment -- RESULTS.json BASE_URL`
//! prints the comment, each chart linked as `BASE_URL/<chart name>.png`.
//!
//! `scripts/screenshot.sh` uses it to show the comment with its images without publishing them.

use std::collections::BTreeMap;
use std::path::Path;

use promptgate::report::{charts, markdown, read_results};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [results, base_url] = args.as_slice() else {
        anyhow::bail!("usage: render_comment RESULTS.json BASE_URL");
    };
    let results = read_results(Path::new(results)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let images: BTreeMap<String, String> = charts::plan_charts(&results)
        .into_iter()
        .map(|plan| {
            let url = format!("{}/{}.png", base_url.trim_end_matches('/'), plan.name);
            (plan.name, url)
        })
        .collect();
    print!("{}", markdown::render_report_with_images(&results, &images)?);
    Ok(())
}
