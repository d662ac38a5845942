//! MQTT 3.1.1 (protocol level 4): `mqttbytes::v4` packets to and from the crate's
//! version-neutral vocabulary ([`crate::packet`]). Mirrors [`crate::v5`].

mod decode;
mod encode;

pub(crate) use decode::{decode, decode_connect, decode_connect_v31};
pub(crate) use encode::{encode, encode_publish};
