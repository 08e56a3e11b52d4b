//! "Make available": reuse the account's rule that already asks for the
//! same placement, else create one — as the JupyterLab extension does, so
//! asking twice does not pile up rules (Rucio would refuse the second as a
//! `DuplicateRule` anyway).

use lakeport_http::date::parse_http_date;

use crate::models::{Rule, RuleState};

/// The account's rule on the DID with exactly this RSE expression, if any;
/// one that is OK or on its way first.
pub fn matching_rule<'a>(rules: &'a [Rule], account: &str, rse_expression: &str) -> Option<&'a Rule> {
    let mine = rules.iter().filter(|r| r.account.as_deref() == Some(account) && r.rse_expression.trim() == rse_expression.trim());
    mine.min_by_key(|r| match r.state {
        RuleState::Ok => 0,
        RuleState::Replicating | RuleState::Inject => 1,
        RuleState::WaitingApproval => 2,
        RuleState::Stuck | RuleState::Suspended => 3,
    })
}

/// Whether a reused rule must be extended to live `lifetime` seconds from
/// `now`: it expires sooner (a rule without expiry never needs it).
pub fn needs_extension(rule: &Rule, lifetime: Option<u64>, now: i64) -> bool {
    let Some(lifetime) = lifetime else { return rule.expires_at.is_some() };
    match rule.expires_at.as_deref().and_then(parse_http_date) {
        Some(expires) => expires < now.saturating_add(lifetime as i64),
        None => false,
    }
}
