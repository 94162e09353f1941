//! JSON objects as the bindings hand them over (records, parameters,
//! options): strict where `serde_json` is lenient. A record must be an
//! object (serde would otherwise take a struct's fields by position from an
//! array: `[2, 77, "..."]`), and no object may hold a key twice (serde_json
//! keeps the last; a caller who wrote `{"tenant":2,"tenant":3}` meant
//! something we cannot know).

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Parses one JSON object and decodes it as `T`: anything but an object,
/// or an object holding a key twice at any depth, is refused; errors name
/// `what`, the field (`session_id: invalid type: string "x4", expected
/// u64`) and the reason (without serde's "at line 1 column N").
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    let Strict(value) = serde_json::from_slice(bytes).map_err(|e| invalid(what, &e))?;
    if !value.is_object() {
        return Err(Error::invalid(
            what,
            format!("must be a JSON object, not {}", kind(&value)),
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let e = e.into_inner();
        if path == "." {
            invalid(what, &e)
        } else {
            Error::invalid(what, format!("{path}: {}", reason(&e)))
        }
    })
}

/// Decodes `bytes` as `T` with serde's own rules (JSON Lines records, whose
/// derived decoders already refuse arrays and repeated fields).
pub(crate) fn parse_typed<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| invalid(what, &e))
}

fn invalid(what: &str, e: &serde_json::Error) -> Error {
    Error::invalid(what, reason(e))
}

/// serde's message without its "at line 1 column N".
fn reason(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON value read with every object's keys checked for repeats.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Strict, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> std::result::Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> std::result::Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            let Strict(v) = map.next_value()?;
            if out.contains_key(&k) {
                return Err(de::Error::custom(format!("the key {k:?} appears twice")));
            }
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Member;

    #[test]
    fn only_objects_without_repeated_keys() {
        let m: Member = parse_json(br#"{"tenant":2,"uid":77,"nickname":"a"}"#, "member").unwrap();
        assert_eq!((m.tenant, m.uid), (2, 77));
        let e = parse_json::<Member>(br#"[2,77,"a"]"#, "member").unwrap_err();
        assert!(
            e.to_string()
                .contains("member: must be a JSON object, not an array"),
            "{e}"
        );
        let e = parse_json::<Value>(br#"{"tenant":2,"tenant":3}"#, "params").unwrap_err();
        assert!(e.to_string().contains("\"tenant\" appears twice"), "{e}");
        let e = parse_json::<Value>(br#"{"a":{"b":1,"b":1}}"#, "params").unwrap_err();
        assert!(e.to_string().contains("\"b\" appears twice"), "{e}");
        // Repeats in different objects are not repeats.
        let v: Value = parse_json(br#"{"a":{"b":1},"c":{"b":[{"b":2}]}}"#, "params").unwrap();
        assert_eq!(v["c"]["b"][0]["b"], 2);
        for bad in [&b"null"[..], b"3", b"\"x\"", b"true"] {
            assert!(parse_json::<Value>(bad, "params").is_err());
        }
        let e = parse_json::<Value>(b"{", "params").unwrap_err();
        assert!(!e.to_string().contains("at line"), "{e}");
    }

    /// A field of the wrong type is named (it was "invalid type: string
    /// \"x4\", expected u64", whichever field it was).
    #[test]
    fn a_wrong_field_is_named() {
        use crate::model::Message;
        let e = parse_json::<Message>(br#"{"tenant":2,"session_id":"x4"}"#, "message").unwrap_err();
        assert!(
            e.to_string()
                .contains("message: session_id: invalid type: string \"x4\", expected u64"),
            "{e}"
        );
        let e = parse_json::<Message>(br#"{"tenant":2}"#, "message").unwrap_err();
        assert!(e.to_string().contains("missing field `session_id`"), "{e}");
        assert!(!e.to_string().contains("at line"), "{e}");
    }
}
