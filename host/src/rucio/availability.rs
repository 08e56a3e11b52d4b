//! Making a DID available at an RSE: the account's rule for it reused or
//! created, optionally followed until it is OK or STUCK, then the
//! replicas' PFNs there (and local paths, with the profile's rse_mounts).

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::session::Session;
use super::{RucioError, Rule, RuleState};
use crate::config::Profile;
use crate::instance::CallError;

/// What to make available where, as the user gave it.
pub struct AvailabilityOptions {
    pub did: String,
    pub rse: String,
    /// How long the data must stay: 3600, 12h, 7d, 2w.
    pub lifetime: String,
    /// Follow the rule until OK or STUCK.
    pub wait: bool,
    /// Give up waiting after this long (e.g. 2h); the rule stays.
    pub timeout: String,
    /// Seconds between looks at the rule while waiting (at least one).
    pub poll_seconds: u64,
}

/// A replica of the DID's files at the RSE.
pub struct Placed {
    pub did: String,
    pub rse: String,
    pub pfn: String,
    /// Where the PFN is mounted on this machine, per the profile's rse_mounts.
    pub path: Option<String>,
}

/// The rule that keeps the DID at the RSE, and its replicas there once it is OK.
pub struct MadeAvailable {
    /// Whether the rule was created now (else the account's was reused).
    pub created: bool,
    pub rule: Rule,
    pub replicas: Vec<Placed>,
}

/// Makes `options.did` available at `options.rse`; while waiting,
/// `on_progress` hears of each change in the rule's state or locks.
pub fn make_available(s: &mut Session, options: &AvailabilityOptions, mut on_progress: impl FnMut(&Rule)) -> Result<MadeAvailable> {
    let d = s.did(&options.did)?;
    let life = s.lifetime(&options.lifetime)?;
    let timeout = Duration::from_secs(s.lifetime(&options.timeout)?.unwrap_or(u64::MAX / 4));
    let wait = options.wait.then_some((timeout, Duration::from_secs(options.poll_seconds.max(1))));
    let rse = options.rse.as_str();
    // One call: a refused session token starts it over, waiting included.
    let (created, rule, files) = s.call(|r| {
        let made = r.make_available(&d, rse, life)?;
        let mut rule = made.rule.clone();
        if let Some((timeout, poll)) = wait {
            let started = Instant::now();
            let mut last = None;
            while !rule.state.is_final() {
                let now = (rule.state, rule.locks_ok, rule.locks_replicating, rule.locks_stuck);
                if last != Some(now) {
                    on_progress(&rule);
                    last = Some(now);
                }
                if started.elapsed() >= timeout {
                    return Err(CallError::Refused(RucioError::Transport(format!(
                        "rule {} is still {} after the --timeout; it stays, run the command again to go on waiting",
                        rule.id,
                        rule.state.as_str()
                    ))));
                }
                std::thread::sleep(poll);
                rule = r.get_rule(&rule.id)?;
            }
        }
        let files = if rule.state == RuleState::Ok { r.list_replicas(std::slice::from_ref(&d), &[], Some(rse), false)? } else { Vec::new() };
        Ok((made.created, rule, files))
    })?;
    if rule.state == RuleState::Stuck && wait.is_some() {
        bail!("rule {} for {d} at {rse} is STUCK ({} OK, {} stuck): {}", rule.id, rule.locks_ok, rule.locks_stuck, rule.error.clone().unwrap_or_else(|| "Rucio gave no reason".into()));
    }
    let mut replicas = Vec::new();
    for f in &files {
        for (rse_name, pfns) in &f.rses {
            for pfn in pfns {
                replicas.push(Placed { did: f.did.to_string(), rse: rse_name.clone(), pfn: pfn.clone(), path: local_path(s.ctx.profile, rse_name, pfn) });
            }
        }
    }
    Ok(MadeAvailable { created, rule, replicas })
}

/// Local paths for PFNs, from the profile's `rse_mounts`: for each RSE a
/// `pfn_prefix` and the `path` it is mounted at on this machine.
fn local_path(profile: &Profile, rse: &str, pfn: &str) -> Option<String> {
    let mount = profile.rse_mounts.get(rse)?;
    let rest = pfn.strip_prefix(&mount.pfn_prefix)?;
    Some(format!("{}/{}", mount.path.trim_end_matches('/'), rest.trim_start_matches('/')))
}
