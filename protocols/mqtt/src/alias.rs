//! MQTT 5 topic aliases (§3.3.2.3.4) in both directions, per connection.
//!
//! * **Inbound**: the server announces a Topic Alias Maximum in its CONNACK
//!   (`MqttConfig::topic_alias_maximum`); a PUBLISH with a topic and an alias sets the
//!   alias, one with an empty topic and an alias uses it. An alias of 0 or above the
//!   maximum is a protocol error (DISCONNECT `0x94`, [MQTT-3.3.2-9]), as is an unknown
//!   alias with an empty topic (`0x82`, [MQTT-3.3.4-?]).
//! * **Outbound**: the client's CONNECT announces how many aliases it accepts; the first
//!   that many distinct topics the server sends get one (the first PUBLISH carries topic
//!   and alias, later ones the alias and an empty topic). No alias is ever reassigned.
//!
//! The maps are allocated on first use: a connection that uses no alias pays one word.

use std::collections::HashMap;

use crate::error::ProtocolError;

#[derive(Debug, Default)]
struct Maps {
    inbound: HashMap<u16, String>,
    outbound: HashMap<Box<str>, u16>,
}

/// A connection's topic aliases.
#[derive(Debug, Default)]
pub(crate) struct Aliases {
    /// The most aliases the client may set (what the CONNACK announced).
    inbound_max: u16,
    /// The most aliases the server may set (the client's Topic Alias Maximum).
    outbound_max: u16,
    maps: Option<Box<Maps>>,
}

/// How to send a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outbound {
    /// The topic, without alias.
    Topic,
    /// The topic and a new alias for it.
    Set(u16),
    /// The alias alone (empty topic).
    Use(u16),
}

impl Aliases {
    /// Aliases accepting `inbound_max` from the client and sending up to `outbound_max`.
    pub(crate) fn new(inbound_max: u16, outbound_max: u16) -> Self {
        Self {
            inbound_max,
            outbound_max,
            maps: None,
        }
    }

    fn maps(&mut self) -> &mut Maps {
        self.maps.get_or_insert_with(Box::default)
    }

    /// The topic of an inbound PUBLISH with `alias` and `topic` (possibly empty).
    ///
    /// # Errors
    /// [`ProtocolError::TopicAliasInvalid`] for 0 or above the maximum,
    /// [`ProtocolError::UnknownTopicAlias`] for an empty topic with an alias never set.
    pub(crate) fn resolve(&mut self, alias: u16, topic: String) -> Result<String, ProtocolError> {
        if alias == 0 || alias > self.inbound_max {
            return Err(ProtocolError::TopicAliasInvalid {
                alias,
                max: self.inbound_max,
            });
        }
        let inbound = &mut self.maps().inbound;
        if topic.is_empty() {
            return inbound
                .get(&alias)
                .cloned()
                .ok_or(ProtocolError::UnknownTopicAlias { alias });
        }
        inbound.insert(alias, topic.clone());
        Ok(topic)
    }

    /// Takes back the alias just given to `topic` (its PUBLISH was not sent).
    pub(crate) fn forget(&mut self, topic: &str) {
        if let Some(maps) = &mut self.maps {
            maps.outbound.remove(topic);
        }
    }

    /// How to send `topic` to the client.
    pub(crate) fn outbound(&mut self, topic: &str) -> Outbound {
        if self.outbound_max == 0 {
            return Outbound::Topic;
        }
        let max = usize::from(self.outbound_max);
        let outbound = &mut self.maps().outbound;
        if let Some(alias) = outbound.get(topic) {
            return Outbound::Use(*alias);
        }
        if outbound.len() >= max {
            return Outbound::Topic;
        }
        let alias = outbound.len() as u16 + 1;
        outbound.insert(topic.into(), alias);
        Outbound::Set(alias)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbound_aliases_are_set_used_and_checked() {
        let mut a = Aliases::new(2, 0);
        assert_eq!(a.resolve(1, "a/b".into()).unwrap(), "a/b");
        assert_eq!(a.resolve(1, String::new()).unwrap(), "a/b");
        assert_eq!(a.resolve(1, "c".into()).unwrap(), "c", "reassigned");
        assert_eq!(a.resolve(1, String::new()).unwrap(), "c");
        assert_eq!(a.resolve(2, String::new()).unwrap_err().reason_code(), 0x82);
        assert_eq!(a.resolve(0, "x".into()).unwrap_err().reason_code(), 0x94);
        assert_eq!(a.resolve(3, "x".into()).unwrap_err().reason_code(), 0x94);
    }

    #[test]
    fn outbound_aliases_go_to_the_first_topics() {
        let mut none = Aliases::new(0, 0);
        assert_eq!(none.outbound("a"), Outbound::Topic);
        assert!(none.maps.is_none(), "nothing allocated");
        let mut a = Aliases::new(0, 2);
        assert_eq!(a.outbound("a"), Outbound::Set(1));
        assert_eq!(a.outbound("a"), Outbound::Use(1));
        assert_eq!(a.outbound("b"), Outbound::Set(2));
        assert_eq!(a.outbound("c"), Outbound::Topic);
        assert_eq!(a.outbound("b"), Outbound::Use(2));
    }
}
