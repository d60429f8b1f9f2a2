//! MQTT topic filters (`+` one level, `#` the rest): which published topics a subscription receives.

/// MQTT topic filter matching (`+` one level, `#` the rest).
///
/// Not `rumqttc::mqttbytes::matches`: it refuses every topic that starts with `$`, even for a filter
/// naming it exactly, while IoT Core's reserved topics (`$aws/things/<name>/shadow/...`) are
/// subscribed to and published on by devices every day.
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    let mut t = topic.split('/');
    for f in filter.split('/') {
        match (f, t.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (f, Some(level)) if f == level => {}
            _ => return false,
        }
    }
    t.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_as_mqtt_defines() {
        assert!(filter_matches("a/+/c", "a/b/c"));
        assert!(filter_matches("a/#", "a/b/c"));
        assert!(filter_matches("#", "a"));
        assert!(!filter_matches("a/+", "a/b/c"));
        assert!(!filter_matches("a/b", "a/b/c"));
        assert!(filter_matches("a/b", "a/b"));
        let shadow = "$aws/things/dev/shadow/update/accepted";
        assert!(filter_matches(shadow, shadow));
        assert!(filter_matches("$aws/things/+/shadow/update/#", shadow));
        assert!(!rumqttc::mqttbytes::matches(shadow, shadow), "rumqttc still refuses `$` topics");
    }
}
