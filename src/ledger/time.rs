//! Instants as the ledger writes them: RFC 3339 in UTC, whole seconds (`crate::time`).

use std::time::SystemTime;

/// Now, as the ledger writes it.
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// `2026-11-30T14:05:00Z`.
pub fn rfc3339(at: SystemTime) -> String {
    crate::time::format_instant(at)
}

/// An RFC 3339 instant, as the ledger or another tool wrote it.
pub fn parse(text: &str) -> Option<SystemTime> {
    crate::time::parse_rfc3339_instant(text)
}
