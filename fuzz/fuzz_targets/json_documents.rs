//! Every JSON document a user or an authorizer hands over: policies (parsed and evaluated), the
//! authorizer's response, describe-authorizer, describe-domain-configuration, the Lambda policy.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = authprobe::auth::documents::DescribedAuthorizer::from_describe_json(text, std::path::Path::new("fuzz.json"));
    if let Ok(policy) = authprobe::auth::permission::read_policy(text) {
        if let Ok(arn) =
            authprobe::auth::permission::AuthorizerArn::parse("arn:aws:iot:us-east-1:123456789012:authorizer/A")
        {
            let _ = authprobe::auth::permission::check(&policy, &arn);
        }
    }
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else { return };
    let _ = authprobe::auth::documents::Domain::from_json(&v);
    if let Ok(p) = authprobe::auth::policy::parse(&v) {
        for (action, resource) in [
            ("iot:Connect", "arn:aws:iot:us-east-1:123456789012:client/dev"),
            ("iot:Publish", "arn:aws:iot:us-east-1:123456789012:topic/a/b"),
        ] {
            let _ = authprobe::auth::policy::evaluate(std::slice::from_ref(&p), action, resource, "dev");
        }
    }
    if let Ok(r) = authprobe::auth::response::validate(&v) {
        let _ = r.policies.len();
    }
});
