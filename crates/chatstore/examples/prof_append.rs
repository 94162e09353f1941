use chatstore::*;
use std::time::Instant;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let mut o = Options {
        linger_ms: 0,
        ..Options::default()
    };
    o.render.media_base = "http://localhost:82".into();
    let store = Store::open(std::path::Path::new(&a[1]), o).unwrap();
    let n: u64 = a[2].parse().unwrap();
    let t = Instant::now();
    for i in 0..n {
        let m = Message {
            tenant: 1,
            session_id: 1 + i % 1000,
            sender: Sender::Member,
            sender_id: 7,
            content: format!("新消息 tin nhắn mới {i}"),
            time: 1_800_000_000 + i as i64,
            ip: "42.114.43.124".into(),
            ..Default::default()
        };
        store.append_message(&m).unwrap();
    }
    eprintln!(
        "{:.1} us/append",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
}
