//! Every MQTT packet either side reads: the emulator's session packets (3.1.1 and 5, as rumqttc reads
//! them) and the probe's classification of whatever answered its CONNECT or checks.
#![no_main]

use authprobe::fuzzing::{Observation, classify};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut b4 = BytesMut::from(data);
    let _ = rumqttc::mqttbytes::v4::Packet::read(&mut b4, 4096);
    let mut b5 = BytesMut::from(data);
    let _ = rumqttc::v5::mqttbytes::v5::Packet::read(&mut b5, Some(4096));
    for version in [4, 5] {
        let o = classify(&Observation::MqttReply { version, bytes: data.to_vec() });
        let _ = serde_json::to_string(&o);
    }
    let _ = authprobe::wire::mqtt::packet_len(data);
});
