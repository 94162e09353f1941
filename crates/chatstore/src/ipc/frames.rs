//! Frames on a sled owner's socket: a [`Request`] or [`Response`] (see
//! `command`) written and read as bytes (ARCHITECTURE.md, "Many
//! processes").
//!
//! A frame is a 4-byte big-endian length, then that many bytes: a tag byte
//! and the body. Tag `J`: the body is a request or response as JSON. Tag
//! `T`: the body is the UTF-8 text of a [`Response::Text`] (a rendered
//! endpoint answer), sent as is rather than escaped into a JSON string; this
//! halves the cost of a page through the socket.

use std::io::{Read, Write};

use serde::Serialize;

use crate::command::{Request, Response};

/// Version of the frames; an owner refuses a client of another version.
pub(crate) const PROTOCOL: u32 = 1;

/// Largest response frame a client accepts (an export batch or a page
/// stays far below this).
const MAX_FRAME: usize = 64 << 20;
/// Largest request frame the owner accepts: the largest legal request is
/// an import chunk (4 MiB of lines, plus the line that passed it, at most
/// `jsonl::MAX_LINE_BYTES`) escaped once more inside the JSON frame.
pub(crate) const MAX_REQUEST: usize = 16 << 20;

const TAG_JSON: u8 = b'J';
const TAG_TEXT: u8 = b'T';

/// Writes one frame of JSON.
pub(crate) fn write_frame<T: Serialize>(w: &mut impl Write, v: &T) -> std::io::Result<()> {
    let mut frame = vec![0, 0, 0, 0, TAG_JSON];
    serde_json::to_writer(&mut frame, v).map_err(std::io::Error::other)?;
    send(w, frame)
}

/// Writes a response: rendered text as is, anything else as JSON.
pub(crate) fn write_response(w: &mut impl Write, resp: &Response) -> std::io::Result<()> {
    match resp {
        Response::Text(text) => {
            let mut frame = Vec::with_capacity(5 + text.len());
            frame.extend_from_slice(&[0, 0, 0, 0, TAG_TEXT]);
            frame.extend_from_slice(text.as_bytes());
            send(w, frame)
        }
        other => write_frame(w, other),
    }
}

fn send(w: &mut impl Write, mut frame: Vec<u8>) -> std::io::Result<()> {
    let len = u32::try_from(frame.len() - 4).map_err(std::io::Error::other)?;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    w.write_all(&frame)?;
    w.flush()
}

fn invalid(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e)
}

/// Reads one frame's tag and body, of at most `max` bytes; `Ok(None)` at a
/// clean end of stream. The body grows as its bytes arrive: a peer that
/// declares a large frame and sends little costs what it sent.
fn receive(r: &mut impl Read, max: usize) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 || len > max {
        return Err(invalid(format!("frame of {len} bytes (at most {max})")));
    }
    let mut tag = [0u8; 1];
    r.read_exact(&mut tag)?;
    let want = len - 1;
    let mut body = Vec::with_capacity(want.min(64 << 10));
    r.take(want as u64).read_to_end(&mut body)?;
    if body.len() != want {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("frame ended after {} of {want} bytes", body.len()),
        ));
    }
    Ok(Some((tag[0], body)))
}

/// Reads one request frame; `Ok(None)` at a clean end of stream. A whole
/// JSON frame that is not a request this build knows (one added by a newer
/// chatstore) is `Ok(Some(Err(reason)))`: the stream stays in step, so the
/// owner answers it with an error and goes on serving.
pub(crate) fn read_request(r: &mut impl Read) -> std::io::Result<Option<Result<Request, String>>> {
    match receive(r, MAX_REQUEST)? {
        None => Ok(None),
        Some((TAG_JSON, body)) => Ok(Some(
            serde_json::from_slice(&body).map_err(|e| e.to_string()),
        )),
        Some((tag, _)) => Err(invalid(format!("unexpected frame tag {tag:#04x}"))),
    }
}

/// Reads a response (either kind of frame); `Ok(None)` at a clean end.
pub(crate) fn read_response(r: &mut impl Read) -> std::io::Result<Option<Response>> {
    match receive(r, MAX_FRAME)? {
        None => Ok(None),
        Some((TAG_TEXT, body)) => String::from_utf8(body)
            .map(|t| Some(Response::Text(t)))
            .map_err(invalid),
        Some((TAG_JSON, body)) => serde_json::from_slice(&body).map(Some).map_err(invalid),
        Some((tag, _)) => Err(invalid(format!("unexpected frame tag {tag:#04x}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::WriteOp;

    #[test]
    fn frames_round_trip_and_refuse_oversize() {
        let mut buf = Vec::new();
        let req = Request::Write {
            id: u128::MAX - 7,
            op: WriteOp::DeleteSession { tenant: 2, id: 9 },
        };
        write_frame(&mut buf, &req).unwrap();
        let back = read_request(&mut buf.as_slice()).unwrap().unwrap().unwrap();
        assert!(
            matches!(back, Request::Write { id, op: WriteOp::DeleteSession { tenant: 2, id: 9 } } if id == u128::MAX - 7)
        );
        assert!(read_request(&mut [].as_slice()).unwrap().is_none());
        let huge = (MAX_FRAME as u32 + 1).to_be_bytes();
        let e = read_request(&mut huge.as_slice()).unwrap_err();
        assert!(e.to_string().contains("at most"), "{e}");
        // A request may not be larger than the largest legal one (issue 18,
        // item 9: 64 MiB requests were taken, and allocated up front).
        let big = ((MAX_REQUEST + 1) as u32).to_be_bytes();
        let e = read_request(&mut big.as_slice()).unwrap_err();
        assert!(e.to_string().contains("at most"), "{e}");
        // A declared frame that never comes costs what was sent.
        let mut short = ((10u32 << 20).to_be_bytes()).to_vec();
        short.extend_from_slice(&[TAG_JSON, b'{']);
        let e = read_request(&mut short.as_slice()).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
        // Rendered text travels raw and comes back the same.
        let mut buf = Vec::new();
        let text = r#"{"result":1,"msg":"\"引号\"","data":[]}"#;
        write_response(&mut buf, &Response::Text(text.into())).unwrap();
        assert_eq!(&buf[5..], text.as_bytes());
        match read_response(&mut buf.as_slice()).unwrap() {
            Some(Response::Text(t)) => assert_eq!(t, text),
            other => panic!("{other:?}"),
        }
        // Other answers are JSON frames.
        let mut buf = Vec::new();
        write_response(&mut buf, &Response::Id(7)).unwrap();
        assert!(matches!(
            read_response(&mut buf.as_slice()).unwrap(),
            Some(Response::Id(7))
        ));
    }
}
