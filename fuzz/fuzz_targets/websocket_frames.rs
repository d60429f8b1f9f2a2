//! The probe's MQTT-over-WebSocket exchange against a peer that sends these bytes after the upgrade:
//! it ends (a reply, a close or the deadline) without panicking, whatever the frames.
#![no_main]

use authprobe::probe::plan::MqttVersion;
use libfuzzer_sys::fuzz_target;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;

/// The fuzz input as the peer's bytes, then EOF; every write is accepted.
struct Peer(Vec<u8>, usize);

impl tokio::io::AsyncRead for Peer {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = buf.remaining().min(self.0.len() - self.1);
        let at = self.1;
        buf.put_slice(&self.0[at..at + n]);
        self.1 += n;
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for Peer {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Ok(b.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

thread_local! {
    static RT: tokio::runtime::Runtime =
        tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
}

fuzz_target!(|data: &[u8]| {
    RT.with(|rt| {
        rt.block_on(async {
            let config = authprobe::fuzzing::websocket_config();
            let ws = WebSocketStream::from_raw_socket(Peer(data.to_vec(), 0), Role::Client, Some(config)).await;
            let mut ch = authprobe::wire::mqtt::Frames::new(ws, true);
            let obs = authprobe::fuzzing::exchange(
                &mut ch,
                MqttVersion::V311,
                &[0x10, 0],
                Duration::from_millis(50),
            )
            .await;
            let _ = authprobe::fuzzing::classify(&obs);
        })
    });
});
