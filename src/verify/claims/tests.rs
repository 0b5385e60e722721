use super::*;

const NOW: u64 = 1_700_000_000;

fn rules() -> ClaimRules {
    with(Audiences::Unset, 60, &["exp"])
}

fn with(audiences: Audiences, leeway: u64, required: &[&str]) -> ClaimRules {
    ClaimRules::new(
        Box::new([]),
        audiences,
        leeway,
        IatRules::default(),
        required.iter().map(|r| Box::from(*r)).collect(),
    )
}

fn run(json: &str, rules: &ClaimRules) -> Result<(), VerifyError> {
    check(json.as_bytes(), rules, NOW)
}

#[test]
fn exp_in_the_future_passes() {
    assert_eq!(run(r#"{"exp":1700000100}"#, &rules()), Ok(()));
}

#[test]
fn exp_boundaries_respect_the_leeway() {
    // Expired once now >= exp + leeway.
    assert_eq!(run(r#"{"exp":1699999941}"#, &rules()), Ok(()));
    assert_eq!(
        run(r#"{"exp":1699999940}"#, &rules()),
        Err(VerifyError::Expired)
    );
    let strict = ClaimRules {
        leeway: 0,
        ..rules()
    };
    assert_eq!(
        run(r#"{"exp":1700000000}"#, &strict),
        Err(VerifyError::Expired)
    );
    assert_eq!(run(r#"{"exp":1700000001}"#, &strict), Ok(()));
}

#[test]
fn fractional_dates_round_towards_rejection() {
    let strict = ClaimRules {
        leeway: 0,
        ..rules()
    };
    assert_eq!(
        run(r#"{"exp":1700000000.9}"#, &strict),
        Err(VerifyError::Expired)
    );
    assert_eq!(run(r#"{"exp":1700000001.5}"#, &strict), Ok(()));
    assert_eq!(
        run(r#"{"exp":1700000100,"nbf":1700000000.1}"#, &strict),
        Err(VerifyError::NotYetValid)
    );
}

#[test]
fn nbf_boundaries_respect_the_leeway() {
    assert_eq!(
        run(r#"{"exp":1700001000,"nbf":1700000060}"#, &rules()),
        Ok(())
    );
    assert_eq!(
        run(r#"{"exp":1700001000,"nbf":1700000061}"#, &rules()),
        Err(VerifyError::NotYetValid)
    );
}

#[test]
fn type_confused_claims_are_rejected_by_name() {
    for (json, name) in [
        (r#"{"exp":"1700000100"}"#, "exp"),
        (r#"{"exp":-1}"#, "exp"),
        (r#"{"exp":null}"#, "exp"),
        (r#"{"exp":[1700000100]}"#, "exp"),
        (r#"{"exp":1700000100,"nbf":true}"#, "nbf"),
        (r#"{"exp":1700000100,"iat":"now"}"#, "iat"),
        (r#"{"exp":1700000100,"iss":["a"]}"#, "iss"),
        (r#"{"exp":1700000100,"sub":7}"#, "sub"),
        (r#"{"exp":1700000100,"aud":7}"#, "aud"),
        (r#"{"exp":1700000100,"aud":["a",7]}"#, "aud"),
        (r#"{"exp":1700000100,"aud":null}"#, "aud"),
        (r#"{"exp":1700000100,"aud":{"a":1}}"#, "aud"),
    ] {
        assert_eq!(
            run(json, &rules()),
            Err(VerifyError::BadClaimType(name)),
            "{json}"
        );
    }
}

#[test]
fn required_claims_must_be_present_and_not_null() {
    let r = with(Audiences::Unset, 60, &["exp", "sub", "tenant"]);
    assert_eq!(
        run(r#"{"sub":"a","tenant":"t"}"#, &r),
        Err(VerifyError::MissingClaim("exp".into()))
    );
    assert_eq!(
        run(r#"{"exp":1700000100,"tenant":"t"}"#, &r),
        Err(VerifyError::MissingClaim("sub".into()))
    );
    assert_eq!(
        run(r#"{"exp":1700000100,"sub":"a","tenant":null}"#, &r),
        Err(VerifyError::MissingClaim("tenant".into()))
    );
    assert_eq!(
        run(r#"{"exp":1700000100,"sub":"a","tenant":{"id":1}}"#, &r),
        Ok(())
    );
}

#[test]
fn exp_is_optional_when_not_required() {
    let r = with(Audiences::Unset, 60, &[]);
    assert_eq!(run("{}", &r), Ok(()));
}

#[test]
fn issuer_must_be_one_of_the_accepted() {
    let r = ClaimRules {
        issuers: Box::new(["https://a".into(), "https://b".into()]),
        ..rules()
    };
    assert_eq!(run(r#"{"exp":1700000100,"iss":"https://b"}"#, &r), Ok(()));
    assert_eq!(
        run(r#"{"exp":1700000100,"iss":"https://c"}"#, &r),
        Err(VerifyError::WrongIssuer)
    );
    // Escapes are decoded before comparing.
    assert_eq!(run(r#"{"exp":1700000100,"iss":"https:\/\/a"}"#, &r), Ok(()));
}

#[test]
fn audience_rules() {
    let one_of = ClaimRules {
        audiences: Audiences::OneOf(Box::new(["api".into()])),
        ..rules()
    };
    assert_eq!(run(r#"{"exp":1700000100,"aud":"api"}"#, &one_of), Ok(()));
    assert_eq!(
        run(r#"{"exp":1700000100,"aud":["x","api"]}"#, &one_of),
        Ok(())
    );
    for aud in [r#""web""#, r#"["x","y"]"#, "[]"] {
        let json = format!(r#"{{"exp":1700000100,"aud":{aud}}}"#);
        assert_eq!(
            run(&json, &one_of),
            Err(VerifyError::WrongAudience),
            "{aud}"
        );
    }
    assert_eq!(
        run(r#"{"exp":1700000100}"#, &one_of),
        Err(VerifyError::WrongAudience)
    );
    // Nothing configured: a token that names an audience is not for us.
    assert_eq!(
        run(r#"{"exp":1700000100,"aud":"api"}"#, &rules()),
        Err(VerifyError::WrongAudience)
    );
    assert_eq!(run(r#"{"exp":1700000100,"aud":[]}"#, &rules()), Ok(()));
    let any = ClaimRules {
        audiences: Audiences::Any,
        ..rules()
    };
    assert_eq!(run(r#"{"exp":1700000100,"aud":"api"}"#, &any), Ok(()));
}

#[test]
fn duplicates_and_non_objects_are_malformed() {
    assert_eq!(
        run(r#"{"exp":1700000100,"exp":1}"#, &rules()),
        Err(VerifyError::Malformed("claims repeat a member"))
    );
    for json in ["[]", "\"exp\"", "{", r#"{"exp":1700000100} x"#, ""] {
        assert_eq!(
            run(json, &rules()),
            Err(VerifyError::Malformed("claims are not a JSON object")),
            "{json}"
        );
    }
}

#[test]
fn types_are_checked_before_presence_and_time() {
    let r = with(Audiences::Unset, 60, &["exp", "sub"]);
    assert_eq!(
        run(r#"{"exp":1,"iat":"x"}"#, &r),
        Err(VerifyError::BadClaimType("iat"))
    );
}

#[test]
fn dates_past_i64_max_seconds_are_wrong_types_not_never() {
    let r = with(Audiences::Unset, 60, &[]);
    for date in [
        "9223372036854775808",  // 2^63
        "18446744073709551615", // u64::MAX
        "18446744073709551616", // u64::MAX + 1 (a float to serde_json)
        "1e20",
        "1e300",
        "9223372036854775808.0",
        "-1",
        "-0.5",
        "-1e300",
    ] {
        for name in ["exp", "nbf", "iat"] {
            let json = format!(r#"{{"{name}":{date}}}"#);
            assert_eq!(
                run(&json, &r),
                Err(VerifyError::BadClaimType(name)),
                "{json}"
            );
        }
    }
    // The largest accepted: i64::MAX, a far-future but real date.
    assert_eq!(run(r#"{"exp":9223372036854775807}"#, &r), Ok(()));
    assert_eq!(run(r#"{"exp":9.2e18,"iat":0,"nbf":0.0}"#, &r), Ok(()));
    // Fractions stay accepted (RFC 7519: a JSON number).
    assert_eq!(run(r#"{"exp":1700000100.25}"#, &r), Ok(()));
}

fn iat_rules(max_age: Option<u64>, reject_future: bool) -> ClaimRules {
    ClaimRules {
        iat: IatRules {
            max_age,
            reject_future,
        },
        ..with(Audiences::Unset, 60, &[])
    }
}

#[test]
fn iat_rules_are_off_by_default() {
    let r = with(Audiences::Unset, 60, &[]);
    assert_eq!(run(r#"{"iat":1800000000}"#, &r), Ok(()));
    assert_eq!(run(r#"{"iat":1}"#, &r), Ok(()));
}

#[test]
fn future_iat_is_rejected_beyond_the_leeway_when_asked() {
    let r = iat_rules(None, true);
    assert_eq!(run(r#"{"iat":1700000060}"#, &r), Ok(()));
    assert_eq!(
        run(r#"{"iat":1700000061}"#, &r),
        Err(VerifyError::IssuedInFuture)
    );
    // Rounds up: 60.5 s ahead is beyond a 60 s leeway.
    assert_eq!(
        run(r#"{"iat":1700000060.5}"#, &r),
        Err(VerifyError::IssuedInFuture)
    );
    assert_eq!(run(r#"{"exp":1700000100}"#, &r), Ok(()));
}

#[test]
fn max_token_age_rejects_old_tokens() {
    let r = iat_rules(Some(300), false);
    // now >= iat + 300 + 60 rejects.
    assert_eq!(run(r#"{"iat":1699999641}"#, &r), Ok(()));
    assert_eq!(run(r#"{"iat":1699999640}"#, &r), Err(VerifyError::TooOld));
    assert_eq!(run(r#"{"iat":1699999640.9}"#, &r), Err(VerifyError::TooOld));
    // A future iat is not "old", and is accepted unless that rule is on.
    assert_eq!(run(r#"{"iat":1800000000}"#, &r), Ok(()));
    assert_eq!(
        run(r#"{"iat":1800000000}"#, &iat_rules(Some(300), true)),
        Err(VerifyError::IssuedInFuture)
    );
}

#[test]
fn a_member_repeated_anywhere_is_malformed() {
    let r = with(Audiences::Any, 60, &[]);
    let dup = Err(VerifyError::Malformed("claims repeat a member"));
    for json in [
        // Unregistered members too: a caller's map type would keep the last.
        r#"{"scope":"read","scope":"admin"}"#,
        r#"{"aud":"a","aud":"b"}"#,
        // The same name once escaped.
        r#"{"sub":"a","\u0073ub":"b"}"#,
        // Inside a claim value, at any depth, in arrays too.
        r#"{"realm":{"roles":["user"],"roles":["admin"]}}"#,
        r#"{"x":[1,{"a":{"b":1,"b":2}}]}"#,
        r#"{"tenant":{"id":1,"id":2}}"#,
    ] {
        assert_eq!(run(json, &r), dup, "{json}");
    }
    let required = with(Audiences::Any, 60, &["tenant"]);
    assert_eq!(run(r#"{"tenant":{"id":1,"id":2}}"#, &required), dup);
    // Same names in different objects are fine.
    assert_eq!(
        run(r#"{"a":{"id":1},"b":{"id":2},"c":[{"id":1},{"id":1}]}"#, &r),
        Ok(())
    );
    // Many members stay linear and still catch the repeat.
    let mut many: String = (0..500).map(|i| format!(r#""m{i}":{i},"#)).collect();
    many.insert(0, '{');
    assert_eq!(run(&format!(r#"{many}"last":0}}"#), &r), Ok(()));
    assert_eq!(run(&format!(r#"{many}"m7":0}}"#), &r), dup);
    assert_eq!(run(&format!(r#"{many}"m400":0}}"#), &r), dup);
}
