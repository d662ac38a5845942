//! MQTT 5 (protocol level 5): `mqttbytes::v5` packets to and from the crate's
//! version-neutral vocabulary ([`crate::packet`]), with properties. Mirrors [`crate::v4`].

mod decode;
mod encode;

pub(crate) use decode::{decode, decode_connect};
pub(crate) use encode::{encode, encode_publish};
