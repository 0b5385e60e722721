//! The schedule, rule by rule, with time as plain `Instant` arithmetic.

use super::*;

const SEC: Duration = Duration::from_secs(1);

fn cfg() -> PolicyConfig {
    PolicyConfig {
        strategy: RefreshStrategy::Both,
        interval: 100 * SEC,
        usage_threshold: 1000,
        background: Some(0.8),
        jitter: false,
        min_refresh_interval: 10 * SEC,
        unknown_kid_cooldown: 30 * SEC,
        stale_while_error: 1000 * SEC,
        backoff_base: SEC,
        backoff_max: 64 * SEC,
        use_cache_headers: true,
        min_ttl: 60 * SEC,
        max_ttl: 3600 * SEC,
    }
}

/// A policy that fetched successfully at `t0`.
fn loaded(cfg: PolicyConfig, t0: Instant) -> Policy {
    let mut p = Policy::new(cfg, 7);
    assert_eq!(p.poll(t0).fetch, Some(RefreshCause::Initial));
    p.on_fetch_start(t0);
    p.on_fetch_done(t0, Outcome::Success { max_age: None });
    p
}

fn fail(p: &mut Policy, now: Instant) {
    p.on_fetch_start(now);
    p.on_fetch_done(
        now,
        Outcome::Failure {
            transient: true,
            retry_after: None,
        },
    );
}

fn usage(p: &mut Policy, now: Instant) {
    p.on_demands(
        now,
        Demands {
            usage: true,
            ..Demands::default()
        },
    );
}

#[test]
fn first_poll_fetches_and_nothing_is_served_before() {
    let t = Instant::now();
    let mut p = Policy::new(cfg(), 1);
    let plan = p.poll(t);
    assert_eq!(plan.fetch, Some(RefreshCause::Initial));
    assert_eq!(plan.freshness, None);
    assert!(!plan.miss_gate_open);
    assert_eq!(plan.usage_arm, None);
}

#[test]
fn time_strategy_is_due_at_lifetime_without_background() {
    let t0 = Instant::now();
    let mut c = cfg();
    c.strategy = RefreshStrategy::Time;
    c.background = None;
    let mut p = loaded(c, t0);
    let plan = p.poll(t0 + 99 * SEC);
    assert_eq!(plan.freshness, Some(Freshness::Fresh));
    assert_eq!(plan.fetch, None);
    assert_eq!(plan.wake_at, Some(t0 + 100 * SEC), "wakes to mark it due");
    assert_eq!(plan.usage_arm, None, "time strategy never counts usage");
    // Due: readers are told to ask; the refresher does not fetch unasked.
    let plan = p.poll(t0 + 100 * SEC);
    assert_eq!(plan.freshness, Some(Freshness::Due));
    assert_eq!(plan.fetch, None);
    // Even long after, with no lookups, the set waits to be asked for.
    assert_eq!(p.poll(t0 + 5000 * SEC).freshness, Some(Freshness::Due));
    p.on_demands(
        t0 + 5000 * SEC,
        Demands {
            due: true,
            ..Demands::default()
        },
    );
    let plan = p.poll(t0 + 5000 * SEC);
    assert_eq!(plan.fetch, Some(RefreshCause::Due));
    assert_eq!(plan.freshness, Some(Freshness::Due), "askers wait for it");
}

#[test]
fn background_fires_at_theta_and_rearms_after_every_refresh() {
    let t0 = Instant::now();
    let mut p = loaded(cfg(), t0);
    let mut t = t0;
    for cycle in 0..5 {
        let plan = p.poll(t + 79 * SEC);
        assert_eq!(plan.fetch, None, "cycle {cycle}: not before 0.8 L");
        assert_eq!(plan.wake_at, Some(t + 80 * SEC), "cycle {cycle}");
        let plan = p.poll(t + 80 * SEC);
        assert_eq!(plan.fetch, Some(RefreshCause::Scheduled), "cycle {cycle}");
        assert_eq!(plan.freshness, Some(Freshness::Fresh));
        t += 80 * SEC;
        p.on_fetch_start(t);
        p.on_fetch_done(t, Outcome::Success { max_age: None });
    }
}

#[test]
fn background_jitter_stays_between_theta_and_halfway_to_expiry() {
    let t0 = Instant::now();
    let mut c = cfg();
    c.jitter = true;
    let mut seen = std::collections::HashSet::new();
    for seed in 0..50 {
        let mut p = Policy::new(c.clone(), seed);
        p.poll(t0);
        p.on_fetch_start(t0);
        p.on_fetch_done(t0, Outcome::Success { max_age: None });
        let at = p.next_fetch_at().expect("background scheduled");
        assert!(at >= t0 + 80 * SEC && at <= t0 + 90 * SEC, "{:?}", at - t0);
        seen.insert(at);
    }
    assert!(
        seen.len() > 40,
        "jitter spreads a fleet: {} distinct",
        seen.len()
    );
}

#[test]
fn usage_strategy_background_share_then_due() {
    let t0 = Instant::now();
    let mut c = cfg();
    c.strategy = RefreshStrategy::Usage;
    let mut p = loaded(c, t0);
    let plan = p.poll(t0 + SEC);
    assert_eq!(plan.usage_arm, Some(800), "θ·U");
    assert_eq!(
        plan.wake_at,
        Some(t0 + 30 * SEC),
        "no lifetime deadline under the usage strategy, only the cooldown"
    );
    assert_eq!(p.poll(t0 + 10_000 * SEC).freshness, Some(Freshness::Fresh));
    usage(&mut p, t0 + 20 * SEC);
    let plan = p.poll(t0 + 20 * SEC);
    assert_eq!(plan.fetch, Some(RefreshCause::Usage));
    assert_eq!(plan.usage_arm, Some(1000), "then armed at U to mark it due");
}

#[test]
fn usage_without_background_marks_due_at_threshold() {
    let t0 = Instant::now();
    let mut c = cfg();
    c.strategy = RefreshStrategy::Usage;
    c.background = None;
    let mut p = loaded(c, t0);
    assert_eq!(p.poll(t0).usage_arm, Some(1000));
    usage(&mut p, t0 + 20 * SEC);
    let plan = p.poll(t0 + 20 * SEC);
    assert_eq!(plan.freshness, Some(Freshness::Due));
    assert_eq!(plan.usage_arm, None, "disarmed until the next success");
    assert_eq!(plan.fetch, None, "background off: the next lookup asks");
}

#[test]
fn both_strategy_due_at_whichever_first() {
    let t0 = Instant::now();
    let mut c = cfg();
    c.background = None;
    // Usage first.
    let mut p = loaded(c.clone(), t0);
    usage(&mut p, t0 + 5 * SEC);
    assert_eq!(p.poll(t0 + 5 * SEC).freshness, Some(Freshness::Due));
    // Time first.
    let mut p = loaded(c, t0);
    assert_eq!(p.poll(t0 + 100 * SEC).freshness, Some(Freshness::Due));
    assert_eq!(p.poll(t0 + 100 * SEC).usage_arm, Some(1000));
}

#[test]
fn usage_triggers_are_rate_limited_by_min_refresh_interval() {
    let t0 = Instant::now();
    let mut p = loaded(cfg(), t0);
    usage(&mut p, t0 + 2 * SEC);
    let plan = p.poll(t0 + 2 * SEC);
    assert_eq!(plan.fetch, None, "only 2 s since the last fetch");
    assert_eq!(plan.wake_at, Some(t0 + 10 * SEC), "deferred to the limit");
    let plan = p.poll(t0 + 10 * SEC);
    assert_eq!(plan.fetch, Some(RefreshCause::Usage));
    // A flood: 100 usage rings within a second cause no further fetch.
    let t1 = t0 + 10 * SEC;
    p.on_fetch_start(t1);
    p.on_fetch_done(t1, Outcome::Success { max_age: None });
    let mut fetches = 0;
    for i in 0..100 {
        let now = t1 + Duration::from_millis(10 * i);
        usage(&mut p, now);
        if p.poll(now).fetch.is_some() {
            fetches += 1;
        }
    }
    assert_eq!(fetches, 0);
}

#[test]
fn unknown_kid_gate_opens_once_per_cooldown() {
    let t0 = Instant::now();
    let mut p = loaded(cfg(), t0);
    // A fetch just started at t0: the gate is closed for the cooldown.
    let plan = p.poll(t0 + 29 * SEC);
    assert!(!plan.miss_gate_open);
    assert_eq!(plan.wake_at, Some(t0 + 30 * SEC), "wakes to reopen it");
    assert!(p.poll(t0 + 30 * SEC).miss_gate_open);
    // A miss demand fetches and closes it again.
    let t1 = t0 + 40 * SEC;
    p.on_demands(
        t1,
        Demands {
            unknown_kid: true,
            ..Demands::default()
        },
    );
    let plan = p.poll(t1);
    assert_eq!(plan.fetch, Some(RefreshCause::UnknownKid));
    assert!(!plan.miss_gate_open);
    p.on_fetch_start(t1);
    p.on_fetch_done(t1, Outcome::Success { max_age: None });
    assert!(!p.poll(t1 + 29 * SEC).miss_gate_open);
    assert!(p.poll(t1 + 30 * SEC).miss_gate_open);
}

#[test]
fn any_fetch_restarts_the_unknown_kid_cooldown() {
    let t0 = Instant::now();
    let mut p = loaded(cfg(), t0);
    let t1 = t0 + 80 * SEC;
    assert_eq!(p.poll(t1).fetch, Some(RefreshCause::Scheduled));
    p.on_fetch_start(t1);
    p.on_fetch_done(t1, Outcome::Success { max_age: None });
    assert!(!p.poll(t1 + 10 * SEC).miss_gate_open);
}

#[test]
fn failures_keep_serving_stale_then_fail_closed() {
    let t0 = Instant::now();
    let mut p = loaded(cfg(), t0);
    let t1 = t0 + 80 * SEC;
    p.poll(t1);
    fail(&mut p, t1);
    let plan = p.poll(t1 + Duration::from_millis(1));
    assert_eq!(plan.freshness, Some(Freshness::Fresh), "not due yet");
    assert!(!plan.miss_gate_open, "no miss fetches while failing");
    assert_eq!(p.poll(t0 + 100 * SEC).freshness, Some(Freshness::Stale));
    assert_eq!(p.poll(t0 + 1099 * SEC).freshness, Some(Freshness::Stale));
    assert_eq!(p.poll(t0 + 1100 * SEC).freshness, Some(Freshness::Expired));
    assert_eq!(p.expires_at(), Some(t0 + 1100 * SEC));
    // Recovery.
    let t2 = t0 + 1200 * SEC;
    p.on_fetch_start(t2);
    p.on_fetch_done(t2, Outcome::Success { max_age: None });
    assert_eq!(p.poll(t2).freshness, Some(Freshness::Fresh));
    assert_eq!(p.failures(), 0);
}

#[test]
fn backoff_doubles_to_the_cap_and_resets_on_success() {
    let t0 = Instant::now();
    let mut p = loaded(cfg(), t0);
    let mut now = t0 + 80 * SEC;
    let mut delays = Vec::new();
    for _ in 0..9 {
        let plan = p.poll(now);
        assert!(plan.fetch.is_some(), "retry is due at {:?}", now - t0);
        fail(&mut p, now);
        let retry = p.next_fetch_at().expect("retry scheduled");
        delays.push((retry - now).as_secs());
        assert_eq!(p.poll(retry - Duration::from_millis(1)).fetch, None);
        now = retry;
    }
    assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 64, 64]);
    p.on_fetch_start(now);
    p.on_fetch_done(now, Outcome::Success { max_age: None });
    fail(&mut p, now + 80 * SEC);
    assert_eq!(p.next_fetch_at(), Some(now + 81 * SEC), "reset to the base");
}

#[test]
fn backoff_full_jitter_stays_under_the_cap() {
    let t0 = Instant::now();
    let mut c = cfg();
    c.jitter = true;
    for seed in 0..20 {
        let mut p = Policy::new(c.clone(), seed);
        let mut now = t0;
        for failures in 1..=8u32 {
            p.poll(now);
            fail(&mut p, now);
            let delay = p.next_fetch_at().expect("retry") - now;
            assert!(
                delay <= p.backoff_cap(failures),
                "{delay:?} after {failures}"
            );
            now += delay;
        }
    }
}

#[test]
fn retry_after_is_honoured_up_to_backoff_max_and_permanent_errors_wait_longest() {
    let t0 = Instant::now();
    let mut p = loaded(cfg(), t0);
    let t1 = t0 + 80 * SEC;
    p.on_fetch_start(t1);
    p.on_fetch_done(
        t1,
        Outcome::Failure {
            transient: true,
            retry_after: Some(20 * SEC),
        },
    );
    assert_eq!(p.next_fetch_at(), Some(t1 + 20 * SEC));
    p.on_fetch_start(t1);
    p.on_fetch_done(
        t1,
        Outcome::Failure {
            transient: true,
            retry_after: Some(10_000 * SEC),
        },
    );
    assert_eq!(
        p.next_fetch_at(),
        Some(t1 + 64 * SEC),
        "capped at backoff_max"
    );
    p.on_fetch_start(t1);
    p.on_fetch_done(
        t1,
        Outcome::Failure {
            transient: false,
            retry_after: None,
        },
    );
    assert_eq!(p.next_fetch_at(), Some(t1 + 64 * SEC), "4xx: not hammered");
}

#[test]
fn initial_failures_retry_with_backoff() {
    let t0 = Instant::now();
    let mut p = Policy::new(cfg(), 3);
    p.poll(t0);
    fail(&mut p, t0);
    let plan = p.poll(t0);
    assert_eq!(plan.fetch, None);
    assert_eq!(plan.freshness, None);
    assert_eq!(plan.wake_at, Some(t0 + SEC));
    assert_eq!(p.poll(t0 + SEC).fetch, Some(RefreshCause::Retry));
}

#[test]
fn manual_overrides_backoff_and_guards() {
    let t0 = Instant::now();
    let mut p = loaded(cfg(), t0);
    fail(&mut p, t0 + SEC);
    p.on_demands(
        t0 + SEC,
        Demands {
            manual: true,
            ..Demands::default()
        },
    );
    assert_eq!(p.poll(t0 + SEC).fetch, Some(RefreshCause::Manual));
}

#[test]
fn background_off_lookup_demand_waits_for_min_interval_as_stale() {
    let t0 = Instant::now();
    let mut c = cfg();
    c.background = None;
    c.strategy = RefreshStrategy::Usage;
    let mut p = loaded(c, t0);
    usage(&mut p, t0 + SEC);
    assert_eq!(p.poll(t0 + SEC).freshness, Some(Freshness::Due));
    p.on_demands(
        t0 + SEC,
        Demands {
            due: true,
            ..Demands::default()
        },
    );
    let plan = p.poll(t0 + SEC);
    assert_eq!(plan.fetch, None, "rate-limited");
    assert_eq!(
        plan.freshness,
        Some(Freshness::Stale),
        "served meanwhile, nobody else waits"
    );
    assert_eq!(plan.wake_at, Some(t0 + 10 * SEC));
    assert_eq!(p.poll(t0 + 10 * SEC).fetch, Some(RefreshCause::Due));
}

#[test]
fn lifetime_from_headers_is_clamped_and_can_be_ignored() {
    let p = Policy::new(cfg(), 0);
    assert_eq!(p.lifetime_for(None), 100 * SEC);
    assert_eq!(p.lifetime_for(Some(300 * SEC)), 300 * SEC);
    assert_eq!(p.lifetime_for(Some(Duration::ZERO)), 60 * SEC, "floor");
    assert_eq!(p.lifetime_for(Some(99_999 * SEC)), 3600 * SEC, "ceiling");
    let mut c = cfg();
    c.use_cache_headers = false;
    assert_eq!(Policy::new(c, 0).lifetime_for(Some(300 * SEC)), 100 * SEC);
}

#[test]
fn not_modified_renews_the_lifetime_from_its_own_max_age() {
    let t0 = Instant::now();
    let mut p = loaded(cfg(), t0);
    let t1 = t0 + 80 * SEC;
    p.poll(t1);
    p.on_fetch_start(t1);
    p.on_fetch_done(
        t1,
        Outcome::Success {
            max_age: Some(600 * SEC),
        },
    );
    assert_eq!(p.due_at(), Some(t1 + 600 * SEC));
    assert_eq!(p.next_fetch_at(), Some(t1 + 480 * SEC));
}

#[test]
fn deadline_arithmetic_saturates_instead_of_panicking() {
    let t = Instant::now();
    let huge = Duration::MAX;
    assert!(after(t, huge) > t, "pushed as far as the platform allows");
    assert_eq!(after(t, SEC), t + SEC);
    let mut c = cfg();
    c.interval = huge;
    c.stale_while_error = huge;
    c.unknown_kid_cooldown = huge;
    c.min_refresh_interval = huge;
    c.backoff_base = huge;
    c.backoff_max = huge;
    c.max_ttl = huge;
    let mut p = loaded(c, t);
    for now in [t, after(t, huge)] {
        let plan = p.poll(now);
        assert!(plan.wake_at.is_none_or(|w| w > now));
        fail(&mut p, now);
        let _ = p.poll(now);
        let _ = (p.due_at(), p.expires_at(), p.next_fetch_at());
    }
}

#[test]
fn a_miss_may_next_fetch_when_the_cooldown_or_the_backoff_ends() {
    let t = Instant::now();
    let mut p = loaded(cfg(), t);
    assert_eq!(p.poll(t).miss_fetch_at, Some(t + 30 * SEC), "cooldown");
    assert_eq!(
        p.poll(t + 40 * SEC).miss_fetch_at,
        Some(t + 40 * SEC),
        "now"
    );
    fail(&mut p, t + 40 * SEC);
    assert_eq!(
        p.poll(t + 40 * SEC).miss_fetch_at,
        Some(t + 41 * SEC),
        "the retry (backoff base, jitter off)"
    );
    assert_eq!(
        Policy::new(cfg(), 1).poll(t).miss_fetch_at,
        None,
        "no set yet"
    );
}

#[test]
fn a_late_due_ring_for_a_replaced_set_fetches_nothing() {
    // Background off: a reader that loaded the due set just before the
    // refresh published its successor rings "due" after that refresh.
    let t0 = Instant::now();
    let mut c = cfg();
    c.background = None;
    c.strategy = RefreshStrategy::Time;
    let mut p = loaded(c, t0);
    let due = Demands {
        due: true,
        ..Demands::default()
    };
    p.on_demands(t0 + 100 * SEC, due);
    assert_eq!(p.poll(t0 + 100 * SEC).fetch, Some(RefreshCause::Due));
    p.on_fetch_start(t0 + 100 * SEC);
    p.on_fetch_done(t0 + 101 * SEC, Outcome::Success { max_age: None });
    // The late ring, then every later round until the new set is due.
    p.on_demands(t0 + 101 * SEC, due);
    for t in [101, 111, 150, 200] {
        let plan = p.poll(t0 + t * SEC);
        assert_eq!(plan.fetch, None, "at +{t} s");
        assert_eq!(plan.freshness, Some(Freshness::Fresh), "at +{t} s");
    }
    assert_eq!(p.poll(t0 + 201 * SEC).freshness, Some(Freshness::Due));
}
